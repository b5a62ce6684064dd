"""Registry of environment backends: every backend implements :class:`~cortico.envs.contract.ManipulationEnv`."""

from __future__ import annotations

from typing import Any

from cortico.envs.contract import ManipulationEnv
from cortico.registry import Registry

BACKENDS: Registry[type] = Registry("environment backend")
BACKENDS.register("metaworld", "cortico.envs.metaworld_backend:MetaWorldEnv")
BACKENDS.register("rlbench", "cortico.envs.rlbench_backend:RLBenchEnv")


def make_env(task: str, *, backend: str = "metaworld", **kwargs: Any) -> ManipulationEnv:
    """Create the ``task`` environment of a backend (``cameras``, ``image_size`` ... are passed on)."""
    return BACKENDS.get(backend)(task, **kwargs)
