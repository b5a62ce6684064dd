"""Gymnasium view of any backend: Dict observations, one step = one keyframe (or one delta action).

Every embedded task is registered as ``cortico/MetaWorld-<task>-v0``::

    import gymnasium as gym
    import cortico.envs  # registers the ids
    env = gym.make("cortico/MetaWorld-drawer-open-v0", image_size=64)
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cortico.envs.backends import make_env
from cortico.envs.contract import KEYFRAME_ACTION_SIZE, KeyframeAction, Observation

INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.;:'!?-()"
MAX_INSTRUCTION_LENGTH = 256
DEFAULT_KEYFRAME_BUDGET = 25
CONTROL_MODES = ("keyframe", "delta")


def observation_space(camera_names: tuple[str, ...], image_size: int, num_joints: int = 7) -> spaces.Dict:
    """The Dict space of an :class:`Observation` turned into numpy (see :func:`observation_to_dict`)."""
    size = (image_size, image_size)
    # Generous finite bounds (metres, radians): a far floor can be tens of metres from a camera.
    camera = spaces.Dict(
        {
            "rgb": spaces.Box(0, 255, (*size, 3), np.uint8),
            "depth": spaces.Box(0.0, 1e4, size, np.float32),
            "points": spaces.Box(-1e4, 1e4, (*size, 3), np.float32),
            "intrinsics": spaces.Box(-1e6, 1e6, (3, 3), np.float64),
            "extrinsics": spaces.Box(-1e4, 1e4, (4, 4), np.float64),
        }
    )
    return spaces.Dict(
        {
            "cameras": spaces.Dict({name: camera for name in camera_names}),
            "gripper_pose": spaces.Box(-1e3, 1e3, (7,), np.float64),
            "gripper_open": spaces.Box(0.0, 1.0, (1,), np.float64),
            "joint_positions": spaces.Box(-1e3, 1e3, (num_joints,), np.float64),
            "joint_velocities": spaces.Box(-1e4, 1e4, (num_joints,), np.float64),
            "time": spaces.Box(0.0, 1e9, (1,), np.float64),
            "instruction": spaces.Text(MAX_INSTRUCTION_LENGTH, charset=INSTRUCTION_CHARSET),
        }
    )


def observation_to_dict(obs: Observation) -> dict[str, Any]:
    """Numpy dict matching :func:`observation_space`."""
    return {
        "cameras": {
            name: {
                "rgb": frame.rgb,
                "depth": frame.depth,
                "points": frame.points,
                "intrinsics": np.asarray(frame.intrinsics, dtype=np.float64),
                "extrinsics": np.asarray(frame.extrinsics, dtype=np.float64),
            }
            for name, frame in obs.cameras.items()
        },
        "gripper_pose": np.asarray(obs.gripper_pose, dtype=np.float64),
        "gripper_open": np.array([obs.gripper_open], dtype=np.float64),
        "joint_positions": np.asarray(obs.joint_positions, dtype=np.float64),
        "joint_velocities": np.asarray(obs.joint_velocities, dtype=np.float64),
        "time": np.array([obs.time], dtype=np.float64),
        "instruction": obs.instruction,
    }


class CorticoGymEnv(gym.Env):
    """A backend task as a gymnasium environment.

    Args:
        task: task name.
        backend: backend name (``metaworld`` or ``rlbench``).
        control: ``"keyframe"`` (action = the 9-number keyframe, executed by the backend's controller) or
            ``"delta"`` (Meta-World's 4-number delta action; Meta-World only).
        render_mode: ``None`` or ``"rgb_array"`` (all cameras side by side).
        **backend_kwargs: passed to the backend (``cameras``, ``image_size``, ...).

    Reward is 1 on success and 0 otherwise; an episode terminates on success.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str,
        *,
        backend: str = "metaworld",
        control: str = "keyframe",
        render_mode: str | None = None,
        **backend_kwargs: Any,
    ) -> None:
        if control not in CONTROL_MODES:
            raise ValueError(f"control must be one of {CONTROL_MODES}, got {control!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if control == "delta" and backend != "metaworld":
            raise ValueError("delta control is only available on the metaworld backend")
        self.backend = make_env(task, backend=backend, **backend_kwargs)
        self.control = control
        self.render_mode = render_mode
        self.observation_space = observation_space(self.backend.camera_names, self.backend.image_size)
        if control == "keyframe":
            low = np.array([-10.0] * 3 + [-1.0] * 4 + [0.0, 0.0], dtype=np.float32)
            high = np.array([10.0] * 3 + [1.0] * 4 + [1.0, 1.0], dtype=np.float32)
            self.action_space = spaces.Box(low, high, (KEYFRAME_ACTION_SIZE,), np.float32)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._last: Observation | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start an episode; ``seed`` is the backend's episode seed (same placement as a demo with that seed).

        ``options={"instruction": ...}`` overrides the drawn instruction.
        """
        super().reset(seed=seed)
        episode_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        instruction = (options or {}).get("instruction")
        self._last = self.backend.reset(seed=episode_seed, instruction=instruction)
        return observation_to_dict(self._last), {"task": self.backend.task, "episode_seed": episode_seed}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Execute one keyframe (or one delta action)."""
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        if self.control == "keyframe":
            outcome = self.backend.execute(KeyframeAction.from_array(action))
            self._last = outcome.observation
            info = {
                "success": outcome.success,
                "reached": outcome.reached,
                "message": outcome.message,
                "steps": outcome.steps,
            }
            success = outcome.success
        else:
            self.backend.step_delta(np.asarray(action, dtype=np.float64))
            self._last = self.backend.observe()
            success = self.backend.success
            info = {"success": success}
        truncated = bool(getattr(self.backend, "episode_over", False)) and not success
        return observation_to_dict(self._last), float(success), bool(success), truncated, info

    def render(self) -> np.ndarray | None:
        """All cameras side by side (``rgb_array``)."""
        if self.render_mode is None or self._last is None:
            return None
        return np.concatenate([frame.rgb for frame in self._last.cameras.values()], axis=1)

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()


def gym_id(task: str) -> str:
    """Gymnasium id of an embedded task."""
    return f"cortico/MetaWorld-{task}-v0"


def register_tasks() -> None:
    """Register every embedded task with gymnasium (idempotent)."""
    from cortico.envs.task_catalog import TASKS

    for task in TASKS:
        env_id = gym_id(task)
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="cortico.envs.gym_env:CorticoGymEnv",
            kwargs={"task": task},
            max_episode_steps=DEFAULT_KEYFRAME_BUDGET,
        )
