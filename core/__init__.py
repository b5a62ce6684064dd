"""cortico: a perceive-remember-act framework for language-conditioned robot manipulation.

This root package lives in ``core/``; the subpackages live in the repository's top-level folders and install
under this namespace:
``cortico.envs`` (simulators and datasets), ``cortico.perception``, ``cortico.policies``,
``cortico.memory``, ``cortico.agents`` and ``cortico.deploy``. Importing ``cortico`` itself is cheap:
nothing heavy is imported until a subpackage is used.
"""

__version__ = "0.1.0"
