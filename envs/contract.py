"""The observation/action contract shared by every backend (simulator, RLBench, real arm).

Conventions (written once, here):
- World frame: metres, z up. Meta-World's robot stands at the origin facing +y.
- Cameras use the OpenCV convention: x right, y down, z forward (along the optical axis).
  ``intrinsics`` is the 3x3 pinhole matrix K; ``extrinsics`` is the 4x4 camera-to-world transform, so a
  pixel (u, v) with depth d maps to ``extrinsics @ [d * K^-1 @ (u, v, 1), 1]``. Pixel (0, 0) is the
  centre of the top-left pixel; row 0 is the top of the image.
- ``depth`` is z-depth along the optical axis in metres; 0 marks a pixel with no valid return, and such
  pixels hold 0 in ``points`` too.
- Quaternions are ``xyzw`` (scalar last), as in RLBench and SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

KEYFRAME_ACTION_SIZE = 9
KEYFRAME_ACTION_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "gripper_open", "ignore_collision")


class ObservationError(ValueError):
    """An observation (or one of its cameras) breaks the contract: wrong shape, dtype or non-finite values."""


@dataclass(frozen=True)
class CameraFrame:
    """One calibrated RGB-D image.

    Attributes:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32, metres along the optical axis; 0 = no valid return.
        points: ``(H, W, 3)`` float32 world-frame position of every pixel (0 where depth is 0).
        intrinsics: ``(3, 3)`` float64 pinhole matrix K.
        extrinsics: ``(4, 4)`` float64 camera-to-world transform (OpenCV camera axes).
    """

    rgb: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    intrinsics: np.ndarray
    extrinsics: np.ndarray

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the image."""
        return self.rgb.shape[0], self.rgb.shape[1]

    @property
    def valid(self) -> np.ndarray:
        """``(H, W)`` bool mask of pixels with a valid depth."""
        return self.depth > 0

    def validate(self, name: str = "camera") -> None:
        """Raise :class:`ObservationError` naming the field when the frame breaks the contract."""
        h, w = self.rgb.shape[:2] if self.rgb.ndim == 3 else (-1, -1)
        expected = {
            "rgb": ((h, w, 3), np.uint8),
            "depth": ((h, w), np.float32),
            "points": ((h, w, 3), np.float32),
            "intrinsics": ((3, 3), None),
            "extrinsics": ((4, 4), None),
        }
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ObservationError(f"{name}.rgb must have shape (H, W, 3), got {self.rgb.shape}")
        for key, (shape, dtype) in expected.items():
            value = getattr(self, key)
            if not isinstance(value, np.ndarray) or value.shape != shape:
                got = getattr(value, "shape", type(value).__name__)
                raise ObservationError(f"{name}.{key} must have shape {shape}, got {got}")
            if dtype is not None and value.dtype != dtype:
                raise ObservationError(f"{name}.{key} must be {np.dtype(dtype).name}, got {value.dtype}")
            if key != "rgb" and not np.isfinite(value).all():
                raise ObservationError(f"{name}.{key} contains NaN or inf values")
        if (self.depth < 0).any():
            raise ObservationError(f"{name}.depth has negative values; depth is metres >= 0 (0 = invalid)")


@dataclass(frozen=True)
class Observation:
    """Everything a policy or the memory sees at one instant.

    Attributes:
        cameras: camera name -> :class:`CameraFrame` (the wrist/egocentric camera is called ``"wrist"``).
        gripper_pose: ``(7,)`` float64, xyz + quaternion xyzw of the gripper's tool centre point.
        gripper_open: 1.0 when the gripper is (commanded) open, 0.0 when closed.
        joint_positions: ``(J,)`` float64 arm joint angles (radians).
        joint_velocities: ``(J,)`` float64 arm joint velocities (rad/s).
        time: seconds since the episode started.
        instruction: the language instruction of the episode.
        task: the task name when known (simulator), else ``""``.
        gripper_joint_positions: ``(G,)`` finger joint positions (metres or radians, backend-specific).
        extras: backend-specific extra arrays (Meta-World: ``"state"``, the privileged 39-number state
            that scripted experts read; policies must not use it).
    """

    cameras: dict[str, CameraFrame]
    gripper_pose: np.ndarray
    gripper_open: float
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    time: float
    instruction: str
    task: str = ""
    gripper_joint_positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`ObservationError` when any field breaks the contract (checked before a policy runs)."""
        if not self.cameras:
            raise ObservationError("observation has no cameras")
        for name, frame in self.cameras.items():
            frame.validate(name)
        pose = np.asarray(self.gripper_pose)
        if pose.shape != (7,):
            raise ObservationError(f"gripper_pose must have shape (7,) (xyz + quat xyzw), got {pose.shape}")
        for key in ("gripper_pose", "joint_positions", "joint_velocities"):
            if not np.isfinite(np.asarray(getattr(self, key))).all():
                raise ObservationError(f"{key} contains NaN or inf values")
        if self.gripper_open not in (0.0, 1.0):
            raise ObservationError(f"gripper_open must be 0.0 or 1.0, got {self.gripper_open!r}")
        if not np.isfinite(self.time):
            raise ObservationError(f"time must be finite, got {self.time!r}")
        if not isinstance(self.instruction, str):
            raise ObservationError(f"instruction must be a string, got {type(self.instruction).__name__}")


@dataclass(frozen=True)
class KeyframeAction:
    """The next keyframe pose of the gripper: ``[x, y, z, qx, qy, qz, qw, gripper_open, ignore_collision]``.

    Attributes:
        position: ``(3,)`` world-frame target of the tool centre point (metres).
        quaternion: ``(4,)`` target orientation, xyzw, unit norm.
        gripper_open: open (True) or close (False) the gripper once the arm is there.
        ignore_collision: whether the motion planner may ignore collisions (RLBench semantics).
    """

    position: np.ndarray
    quaternion: np.ndarray
    gripper_open: bool
    ignore_collision: bool = False

    @classmethod
    def from_array(cls, values: np.ndarray | list[float]) -> KeyframeAction:
        """Build from the 9-number array, validating it (finite values, non-zero quaternion)."""
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.shape != (KEYFRAME_ACTION_SIZE,):
            raise ValueError(
                f"a keyframe action has {KEYFRAME_ACTION_SIZE} numbers {KEYFRAME_ACTION_FIELDS}, got {arr.shape[0]}"
            )
        if not np.isfinite(arr).all():
            bad = [KEYFRAME_ACTION_FIELDS[i] for i in np.flatnonzero(~np.isfinite(arr))]
            raise ValueError(f"keyframe action has non-finite values in {bad}")
        quat = arr[3:7]
        norm = np.linalg.norm(quat)
        if norm < 1e-6:
            raise ValueError("keyframe action quaternion (qx, qy, qz, qw) has zero norm")
        return cls(
            position=arr[:3].copy(),
            quaternion=quat / norm,
            gripper_open=bool(arr[7] >= 0.5),
            ignore_collision=bool(arr[8] >= 0.5),
        )

    def to_array(self) -> np.ndarray:
        """The 9-number float32 array."""
        return np.concatenate(
            [
                np.asarray(self.position, dtype=np.float64),
                np.asarray(self.quaternion, dtype=np.float64),
                [float(self.gripper_open), float(self.ignore_collision)],
            ]
        ).astype(np.float32)


@dataclass(frozen=True)
class KeyframeOutcome:
    """What happened when a backend executed a :class:`KeyframeAction`.

    Attributes:
        observation: the observation after the move.
        success: the task's success condition holds now.
        reached: the arm got within tolerance of the target position.
        steps: low-level control steps the move took.
        position_error: final distance to the target, metres.
        message: why the move ended (``"reached"``, ``"target outside the reachable workspace ..."``,
            ``"stalled ..."``, ``"step limit ..."``).
    """

    observation: Observation
    success: bool
    reached: bool
    steps: int
    position_error: float
    message: str


@runtime_checkable
class ManipulationEnv(Protocol):
    """What the agent loop needs from any backend: a simulator, RLBench or a real arm."""

    task: str
    camera_names: tuple[str, ...]

    def reset(self, *, seed: int | None = None, instruction: str | None = None) -> Observation:
        """Start an episode and return the first observation."""
        ...

    def observe(self) -> Observation:
        """Return the current observation without moving."""
        ...

    def execute(self, action: KeyframeAction) -> KeyframeOutcome:
        """Move to the keyframe (arm first, then gripper) and report the outcome."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...
