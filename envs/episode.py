"""In-memory form of one recorded episode, shared by the expert recorder, the dataset and replay."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cortico.envs.contract import KeyframeAction


@dataclass
class CameraSequence:
    """Images and calibration of one camera over the stored steps (``F`` frames)."""

    rgb: np.ndarray  # (F, H, W, 3) uint8
    depth: np.ndarray  # (F, H, W) float32 metres, 0 = invalid
    intrinsics: np.ndarray  # (F, 3, 3)
    extrinsics: np.ndarray  # (F, 4, 4) camera-to-world


@dataclass
class EpisodeRecord:
    """One demonstration: per-step proprioception (``T`` steps) and images for the stored steps."""

    task: str
    instruction: str
    seed: int
    success: bool
    control_dt: float
    gripper_pose: np.ndarray  # (T, 7) xyz + quat xyzw
    gripper_open: np.ndarray  # (T,)
    joint_positions: np.ndarray  # (T, 7)
    joint_velocities: np.ndarray  # (T, 7)
    gripper_joint_positions: np.ndarray  # (T, 2)
    time: np.ndarray  # (T,)
    state: np.ndarray  # (T, 39) Meta-World privileged state
    actions: np.ndarray  # (T - 1, 4) the expert's delta actions; action t leads from step t to t + 1
    keyframes: list[int]
    frame_steps: np.ndarray  # (F,) step index of each stored image frame
    cameras: dict[str, CameraSequence] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        """Number of recorded steps ``T``."""
        return int(self.gripper_pose.shape[0])

    def keyframe_action(self, step: int) -> KeyframeAction:
        """The keyframe action that reaches the gripper state recorded at ``step``."""
        return keyframe_action_at(self.gripper_pose, self.gripper_open, step)


def keyframe_action_at(gripper_pose: np.ndarray, gripper_open: np.ndarray, step: int) -> KeyframeAction:
    """Keyframe action for the recorded pose and gripper state at ``step`` (collision-aware motion)."""
    pose = gripper_pose[step]
    return KeyframeAction(
        position=pose[:3].copy(),
        quaternion=pose[3:7].copy(),
        gripper_open=bool(gripper_open[step] >= 0.5),
        ignore_collision=False,
    )
