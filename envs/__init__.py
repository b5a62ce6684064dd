"""Environments behind one observation/action contract, expert demonstrations and their datasets.

Importing this package picks MuJoCo's OpenGL backend (OSMesa on CPU machines, EGL with an NVIDIA GPU)
before MuJoCo loads, and registers every embedded task with gymnasium
(``gymnasium.make("cortico/MetaWorld-drawer-open-v0")``).
"""

from cortico.envs.gl_backend import configure_gl_backend

configure_gl_backend()

from cortico.envs.contract import (  # noqa: E402
    CameraFrame,
    KeyframeAction,
    KeyframeOutcome,
    ManipulationEnv,
    Observation,
    ObservationError,
)
from cortico.envs.gym_env import gym_id, register_tasks  # noqa: E402
from cortico.envs.task_catalog import SUITES, TASKS, TaskSpec, get_task, resolve_tasks  # noqa: E402

register_tasks()

__all__ = [
    "CameraFrame",
    "KeyframeAction",
    "KeyframeOutcome",
    "ManipulationEnv",
    "Observation",
    "ObservationError",
    "SUITES",
    "TASKS",
    "TaskSpec",
    "get_task",
    "gym_id",
    "resolve_tasks",
]
