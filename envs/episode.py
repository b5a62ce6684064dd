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
    # (T,) the gripper touched something not the robot at the step; empty when not recorded (before revision 4)
    hand_contact: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def num_steps(self) -> int:
        """Number of recorded steps ``T``."""
        return int(self.gripper_pose.shape[0])

    def keyframe_actions(self) -> list[KeyframeAction]:
        """The keyframe actions that reach the gripper states recorded at the keyframes, in order."""
        labels = ignore_collision_labels(self.hand_contact, self.keyframes)
        return [
            keyframe_action_at(self.gripper_pose, self.gripper_open, step, ignore)
            for step, ignore in zip(self.keyframes, labels)
        ]


# Contact steps that make a move "through contact": 8 control steps, 0.1 s at Meta-World's 80 Hz. In the MT10 demos
# a hand arriving at a handle or a peg touches it for its last 1-7 steps; pushes, pulls, presses and carries
# touch for 11-40 (BENCHMARKS.md, "A collision label the heads can learn").
MIN_CONTACT_STEPS = 8


def ignore_collision_labels(
    hand_contact: np.ndarray, keyframes: list[int], min_contact_steps: int = MIN_CONTACT_STEPS
) -> list[bool]:
    """Per keyframe: whether the move there went through contact (touching when it began, or for long enough).

    Through contact: the gripper was touching something when the move began (it holds or pulls what it touches),
    or touched something for at least ``min_contact_steps`` steps of the move.

    A move made through contact (a push, a pull, a carry, a press) must not be planned around obstacles:
    RLBench's ``ignore_collisions``. A touch in a move's last few steps is the gripper arriving at what it will
    grasp or pull next: a planner still approaches it around obstacles. Without recorded contacts every move
    avoids collisions (all False).
    """
    contact = np.asarray(hand_contact, dtype=bool)
    if contact.size == 0:
        return [False] * len(keyframes)
    labels, previous = [], 0
    for step in keyframes:
        touched = contact[previous + 1 : step + 1] if step > previous else contact[step : step + 1]
        labels.append(bool(contact[previous]) or int(touched.sum()) >= min(min_contact_steps, len(touched)))
        previous = step
    return labels


def keyframe_action_at(
    gripper_pose: np.ndarray, gripper_open: np.ndarray, step: int, ignore_collision: bool = False
) -> KeyframeAction:
    """Keyframe action for the recorded pose and gripper state at ``step``."""
    pose = gripper_pose[step]
    return KeyframeAction(
        position=pose[:3].copy(),
        quaternion=pose[3:7].copy(),
        gripper_open=bool(gripper_open[step] >= 0.5),
        ignore_collision=ignore_collision,
    )
