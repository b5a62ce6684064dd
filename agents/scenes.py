"""Where the agent's commands are carried out: one simulator scene per task, or one real robot for all.

The embedded suite builds one MuJoCo scene per task, so a simulated agent switches scenes between
commands; a robot (the ROS arm, an RLBench scene) is one environment whatever the command asks for.
"""

from __future__ import annotations

from typing import Any, Protocol

from cortico.envs.contract import ManipulationEnv


class Scenes(Protocol):
    """The environment that carries out a command for ``task``."""

    def get(self, task: str) -> ManipulationEnv:
        """The environment for ``task`` (created on first use)."""
        ...

    def close(self) -> None:
        """Free every environment."""
        ...


class SimulatorScenes:
    """One environment of a simulator backend per task, created on first use and kept for later commands.

    Args:
        backend: an environment backend (``metaworld`` or ``rlbench``).
        max_open: scenes kept open at once (the least recently used one is closed beyond it).
        **env_kwargs: passed to every environment (``cameras``, ``image_size`` ...).
    """

    def __init__(self, backend: str = "metaworld", max_open: int = 4, **env_kwargs: Any) -> None:
        from cortico.envs.backends import BACKENDS

        BACKENDS.get(backend)  # an unknown backend fails here, naming the known ones
        self.backend = backend
        self.max_open = max(1, max_open)
        self.env_kwargs = env_kwargs
        self._open: dict[str, ManipulationEnv] = {}

    def get(self, task: str) -> ManipulationEnv:
        """The scene of ``task`` (built on first use; the least recently used one closes beyond ``max_open``)."""
        from cortico.envs.backends import make_env

        env = self._open.pop(task, None)
        if env is None:
            env = make_env(task, backend=self.backend, **self.env_kwargs)
            while len(self._open) >= self.max_open:
                self._open.pop(next(iter(self._open))).close()
        self._open[task] = env  # most recently used last
        return env

    def close(self) -> None:
        """Close every open scene."""
        for env in self._open.values():
            env.close()
        self._open.clear()


class RobotScene:
    """A single environment for every command: a real arm, or one simulator scene locked to its task.

    Args:
        env: the environment.
        task: the task the scene is built for; commands for another task are refused (None: any task).
    """

    def __init__(self, env: ManipulationEnv, task: str | None = None) -> None:
        self.env = env
        self.task = task

    def get(self, task: str) -> ManipulationEnv:
        """The environment (a locked scene refuses other tasks)."""
        if self.task is not None and task != self.task:
            raise ValueError(
                f"this scene is built for {self.task!r} and cannot carry out {task!r}; give the agent "
                "SimulatorScenes() to switch scenes between commands"
            )
        return self.env

    def close(self) -> None:
        """Close the environment."""
        self.env.close()


def as_scenes(env: Any) -> Scenes:
    """An environment or a :class:`Scenes` as scenes: a robot serves every task, a simulator scene its own."""
    if hasattr(env, "get") and hasattr(env, "close") and not hasattr(env, "execute"):
        return env
    from cortico.envs.metaworld_backend import MetaWorldEnv

    return RobotScene(env, task=env.task if isinstance(env, MetaWorldEnv) else None)
