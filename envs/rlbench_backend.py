"""RLBench backend (optional): RLBench tasks behind the cortico contract.

Written against RLBench's documented API (``rlbench.environment.Environment``,
``ObservationConfig``, ``MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete())``). RLBench needs
CoppeliaSim and PyRep, which are not on the package index, so this backend is **not exercised** on the
reference machine; the observation conversion below is tested with arrays shaped like RLBench's.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from cortico.envs.contract import CameraFrame, KeyframeAction, KeyframeOutcome, Observation

logger = logging.getLogger(__name__)

RLBENCH_CAMERAS = ("left_shoulder", "right_shoulder", "overhead", "wrist", "front")
# The 18 tasks used by PerAct, RVT and their successors.
RLBENCH_18 = (
    "close_jar",
    "insert_onto_square_peg",
    "light_bulb_in",
    "meat_off_grill",
    "open_drawer",
    "place_cups",
    "place_shape_in_shape_sorter",
    "place_wine_at_rack_location",
    "push_buttons",
    "put_groceries_in_cupboard",
    "put_item_in_drawer",
    "put_money_in_safe",
    "reach_and_drag",
    "slide_block_to_color_target",
    "stack_blocks",
    "stack_cups",
    "sweep_to_dustpan_of_size",
    "turn_tap",
)
INSTALL_HELP = (
    "the RLBench backend needs CoppeliaSim 4.1, PyRep and RLBench, which are not on PyPI:\n"
    "  1. download CoppeliaSim 4.1 (Ubuntu build) from https://www.coppeliarobotics.com/previousVersions\n"
    "  2. export COPPELIASIM_ROOT=<its folder>; export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$COPPELIASIM_ROOT;\n"
    "     export QT_QPA_PLATFORM_PLUGIN_PATH=$COPPELIASIM_ROOT\n"
    "  3. .venv/bin/pip install git+https://github.com/stepjam/PyRep.git git+https://github.com/stepjam/RLBench.git\n"
    "  4. headless machines: run under xvfb-run (CoppeliaSim opens an X display)"
)


class BackendUnavailableError(ImportError):
    """A backend's simulator is not installed; the message says how to install it."""


def to_opencv_calibration(intrinsics: np.ndarray, extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn a pinhole calibration with negative focal lengths into the contract's OpenCV convention.

    Some simulators (CoppeliaSim through PyRep) give ``K`` with negative ``fx``/``fy``: ``u = fx * x / z +
    cx`` with the camera's x axis pointing left. Flipping the sign of a focal length and of the matching
    camera axis describes the same projection with positive focal lengths.
    """
    intrinsics = np.asarray(intrinsics, dtype=np.float64).copy()
    extrinsics = np.asarray(extrinsics, dtype=np.float64).copy()
    for axis in (0, 1):
        if intrinsics[axis, axis] < 0:
            intrinsics[axis, axis] *= -1
            extrinsics[:3, axis] *= -1
    if np.linalg.det(extrinsics[:3, :3]) < 0:
        raise ValueError("calibration flips one image axis only; it does not describe a physical camera")
    return intrinsics, extrinsics


def observation_from_rlbench(
    obs: Any, cameras: tuple[str, ...], instruction: str, task: str, elapsed: float
) -> Observation:
    """Map an ``rlbench.backend.observation.Observation`` onto the contract (depth must be in metres)."""
    frames = {}
    for name in cameras:
        rgb = getattr(obs, f"{name}_rgb")
        depth = getattr(obs, f"{name}_depth")
        points = getattr(obs, f"{name}_point_cloud")
        if rgb is None or depth is None or points is None:
            raise ValueError(f"RLBench camera {name!r} is disabled in the ObservationConfig")
        intrinsics, extrinsics = to_opencv_calibration(
            obs.misc[f"{name}_camera_intrinsics"], obs.misc[f"{name}_camera_extrinsics"]
        )
        depth = np.asarray(depth, dtype=np.float32)
        frames[name] = CameraFrame(
            rgb=np.asarray(rgb, dtype=np.uint8),
            depth=depth,
            points=np.where(depth[..., None] > 0, points, 0).astype(np.float32),
            intrinsics=intrinsics,
            extrinsics=extrinsics,
        )
    return Observation(
        cameras=frames,
        gripper_pose=np.asarray(obs.gripper_pose, dtype=np.float64),
        gripper_open=float(obs.gripper_open >= 0.5),
        joint_positions=np.asarray(obs.joint_positions, dtype=np.float64),
        joint_velocities=np.asarray(obs.joint_velocities, dtype=np.float64),
        time=elapsed,
        instruction=instruction,
        task=task,
        gripper_joint_positions=np.asarray(getattr(obs, "gripper_joint_positions", np.zeros(0)), dtype=np.float64),
    )


def rlbench_action(action: KeyframeAction) -> np.ndarray:
    """The 9-number action for ``MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete())``."""
    return action.to_array().astype(np.float64)


class RLBenchEnv:
    """One RLBench task behind the cortico contract (CoppeliaSim must be installed; see ``INSTALL_HELP``).

    Args:
        task: RLBench task name in snake_case, e.g. ``"open_drawer"``.
        cameras: RLBench camera names (default: left_shoulder, right_shoulder, front, wrist).
        image_size: square image size in pixels.
        headless: run CoppeliaSim without a window.
    """

    def __init__(
        self,
        task: str,
        *,
        cameras: tuple[str, ...] | list[str] | str | None = None,
        image_size: int = 128,
        headless: bool = True,
    ) -> None:
        try:
            from rlbench.action_modes.action_mode import MoveArmThenGripper
            from rlbench.action_modes.arm_action_modes import EndEffectorPoseViaPlanning
            from rlbench.action_modes.gripper_action_modes import Discrete
            from rlbench.environment import Environment
            from rlbench.observation_config import ObservationConfig
            from rlbench.utils import name_to_task_class
        except ImportError as error:
            raise BackendUnavailableError(f"{INSTALL_HELP}\n(import failed: {error})") from error

        if isinstance(cameras, str):
            cameras = tuple(c.strip() for c in cameras.split(",") if c.strip())
        self.camera_names = tuple(cameras or ("left_shoulder", "right_shoulder", "front", "wrist"))
        unknown = [c for c in self.camera_names if c not in RLBENCH_CAMERAS]
        if unknown:
            raise ValueError(f"unknown RLBench cameras {unknown}; available: {', '.join(RLBENCH_CAMERAS)}")
        self.image_size = image_size
        self.task = task
        obs_config = ObservationConfig()
        obs_config.set_all(False)
        for name in self.camera_names:
            camera_config = getattr(obs_config, f"{name}_camera")
            camera_config.rgb = camera_config.depth = camera_config.point_cloud = True
            camera_config.depth_in_meters = True
            camera_config.image_size = (image_size, image_size)
        for field in ("gripper_pose", "gripper_open", "joint_positions", "joint_velocities", "gripper_joint_positions"):
            setattr(obs_config, field, True)
        self._env = Environment(
            action_mode=MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete()),
            obs_config=obs_config,
            headless=headless,
        )
        self._env.launch()
        self._task = self._env.get_task(name_to_task_class(task))
        self._instruction = ""
        self._last: Any = None
        self._keyframes = 0
        self._started = time.monotonic()
        self.success = False

    def reset(self, *, seed: int | None = None, instruction: str | None = None) -> Observation:
        """Reset the task (RLBench draws its own variation; ``seed`` seeds numpy's global generator)."""
        if seed is not None:
            np.random.seed(seed)
        descriptions, self._last = self._task.reset()
        self._instruction = instruction or (descriptions[0] if descriptions else self.task.replace("_", " "))
        self._keyframes = 0
        self._started = time.monotonic()
        self.success = False
        return self.observe()

    def observe(self) -> Observation:
        """The latest observation in the contract's terms."""
        elapsed = time.monotonic() - self._started
        return observation_from_rlbench(self._last, self.camera_names, self._instruction, self.task, elapsed)

    def execute(self, action: KeyframeAction) -> KeyframeOutcome:
        """Plan and execute the move, then the gripper; planning failures are reported, not raised."""
        from rlbench.backend.exceptions import InvalidActionError

        try:
            from pyrep.errors import ConfigurationPathError, IKError

            planning_errors: tuple[type[BaseException], ...] = (InvalidActionError, ConfigurationPathError, IKError)
        except ImportError:
            planning_errors = (InvalidActionError,)
        self._keyframes += 1
        try:
            self._last, reward, terminate = self._task.step(rlbench_action(action))
            self.success = self.success or reward > 0
            message, reached = "reached", True
        except planning_errors as error:
            message, reached = f"planning failed: {error}", False
        observation = self.observe()
        error_m = float(np.linalg.norm(observation.gripper_pose[:3] - action.position))
        return KeyframeOutcome(observation, self.success, reached, 1, error_m, message)

    def close(self) -> None:
        """Shut CoppeliaSim down."""
        self._env.shutdown()
