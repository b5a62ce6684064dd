"""Choose MuJoCo's OpenGL backend before MuJoCo is imported.

Headless CPU machines render through OSMesa; a machine with an NVIDIA GPU renders through EGL. Both
``MUJOCO_GL`` and ``PYOPENGL_PLATFORM`` must be set, and before the first ``import mujoco``; a user's
own settings always win.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_SUPPORTED = ("osmesa", "egl", "glfw")


def _nvidia_egl_available() -> bool:
    """True when an NVIDIA device node and an EGL library are both present."""
    has_gpu = os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version")
    return has_gpu and ctypes.util.find_library("EGL") is not None


def gl_context_class() -> type:
    """MuJoCo's GL context class for the configured backend, even if ``mujoco`` was imported first.

    ``mujoco.gl_context`` picks its class when mujoco is imported; importing the backend module directly
    keeps cortico working when a user imported mujoco before cortico (PyOpenGL must not be loaded yet).
    """
    backend = configure_gl_backend()
    if backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif backend == "egl":
        from mujoco.egl import GLContext
    else:
        from mujoco.gl_context import GLContext
    return GLContext


def configure_gl_backend() -> str:
    """Set ``MUJOCO_GL``/``PYOPENGL_PLATFORM`` if unset and return the backend in use."""
    backend = os.environ.get("MUJOCO_GL")
    if backend is None:
        backend = "egl" if _nvidia_egl_available() else "osmesa"
        os.environ["MUJOCO_GL"] = backend
    if backend in ("osmesa", "egl"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        platform = sys.modules.get("OpenGL.platform")
        loaded = getattr(getattr(platform, "PLATFORM", None), "__class__", type(None)).__name__.lower()
        if platform is not None and backend not in loaded:
            logger.warning(
                "PyOpenGL was loaded before cortico.envs with another platform (%s); set MUJOCO_GL=%s and "
                "PYOPENGL_PLATFORM=%s in the environment before starting Python",
                loaded,
                backend,
                backend,
            )
    elif backend not in _SUPPORTED:
        logger.warning("MUJOCO_GL=%s is not one of %s; rendering may fail", backend, _SUPPORTED)
    return backend
