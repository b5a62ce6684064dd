"""Robot profiles: the YAML file that says which topics, frames, message types and limits a robot uses.

Profiles for a Franka-style and a Sawyer-style arm ship in ``deploy/profiles``; ``sim_sawyer`` is the
simulated arm that ``cortico deploy sim-arm`` serves. Every missing or malformed field is reported by its
dotted path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


class ProfileError(ValueError):
    """A robot profile is missing a field or has a malformed one."""


@dataclass(frozen=True)
class CameraTopics:
    """Topics and encodings of one RGB-D camera."""

    image: str
    depth: str
    info: str
    image_encoding: str = "rgb8"
    depth_encoding: str = "32FC1"
    depth_scale: float = 0.001  # metres per unit of a 16UC1 depth image


@dataclass(frozen=True)
class SafetyLimits:
    """What the safety layer enforces between the policy and the robot.

    Attributes:
        workspace_low, workspace_high: box (base frame) the gripper must stay in.
        on_violation: what happens to a keyframe outside the box or beyond the step limits: ``"clamp"``
            (move it inside / shorten it) or ``"refuse"`` (send nothing).
        max_translation: metres a single keyframe may move the gripper (longer moves are shortened or refused).
        max_rotation_deg: degrees a single keyframe may turn the gripper.
        max_speed: metres per second of the streamed motion.
        max_angular_speed: radians per second of the streamed motion.
        gripper_min_interval: seconds between two gripper changes.
        watchdog_timeout: seconds without a fresh observation (or policy heartbeat) before the arm is stopped.
        policy_timeout: seconds a policy decision may take before the watchdog stops the arm.
    """

    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    on_violation: str = "clamp"
    max_translation: float = 0.25
    max_rotation_deg: float = 45.0
    max_speed: float = 0.25
    max_angular_speed: float = 0.6
    gripper_min_interval: float = 0.5
    watchdog_timeout: float = 0.15
    policy_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.on_violation not in ("clamp", "refuse"):
            raise ProfileError(f"safety.on_violation must be 'clamp' or 'refuse', got {self.on_violation!r}")
        if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high)) or len(self.workspace_low) != 3:
            raise ProfileError(
                f"safety workspace needs low < high on x, y, z: {self.workspace_low} .. {self.workspace_high}"
            )
        for name in ("max_translation", "max_rotation_deg", "max_speed", "max_angular_speed", "watchdog_timeout"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"safety.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RobotProfile:
    """Everything the deploy side needs to know about one robot."""

    name: str
    base_frame: str
    joints: tuple[str, ...]
    joint_states: str
    ee_pose: str
    pose_command: str
    gripper_command: str
    cameras: dict[str, CameraTopics]
    safety: SafetyLimits
    gripper_type: str = "binary"  # "binary": std_msgs/Bool (True = open); "width": std_msgs/Float64 metres
    gripper_open_width: float = 0.08
    ee_pose_source: str = "topic"  # "topic" (geometry_msgs/PoseStamped) or "tf"
    trajectory_command: str = ""
    estop: str = "/cortico/estop"
    calibration: str = ""
    control_rate: float = 20.0
    position_tolerance: float = 0.01
    keyframe_timeout: float = 15.0
    simulated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gripper_type not in ("binary", "width"):
            raise ProfileError(f"gripper.type must be 'binary' or 'width', got {self.gripper_type!r}")
        if self.ee_pose_source not in ("topic", "tf"):
            raise ProfileError(f"topics.ee_pose_source must be 'topic' or 'tf', got {self.ee_pose_source!r}")
        if not self.cameras:
            raise ProfileError("a profile needs at least one camera")

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Camera names in profile order."""
        return tuple(self.cameras)


def _require(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ProfileError(f"robot profile is missing '{path}'")
        node = node[part]
    return node


def load_profile(source: str | Path) -> RobotProfile:
    """Load a profile from a YAML file, or by name from the shipped ones (``franka``, ``sawyer``, ``sim_sawyer``)."""
    path = Path(source)
    if not path.suffix and not path.exists():
        path = PROFILES_DIR / f"{source}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ProfileError(f"robot profile {source} not found; shipped profiles: {shipped}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ProfileError(f"{path} must hold a mapping of profile fields")
    try:
        cameras = {
            name: CameraTopics(**{k: v for k, v in spec.items()}) for name, spec in _require(raw, "cameras").items()
        }
        safety = _require(raw, "safety")
        limits = SafetyLimits(
            workspace_low=tuple(_require(raw, "safety.workspace_low")),
            workspace_high=tuple(_require(raw, "safety.workspace_high")),
            **{k: v for k, v in safety.items() if k not in ("workspace_low", "workspace_high")},
        )
        gripper = raw.get("gripper", {})
        control = raw.get("control", {})
        calibration = raw.get("calibration", "")
        if calibration and not Path(calibration).is_absolute():
            calibration = str(path.parent / calibration)
        return RobotProfile(
            name=str(_require(raw, "name")),
            base_frame=str(_require(raw, "base_frame")),
            joints=tuple(_require(raw, "joints")),
            joint_states=str(_require(raw, "topics.joint_states")),
            ee_pose=str(_require(raw, "topics.ee_pose")),
            pose_command=str(_require(raw, "topics.pose_command")),
            gripper_command=str(_require(raw, "topics.gripper_command")),
            trajectory_command=str(raw["topics"].get("trajectory_command", "")),
            estop=str(raw["topics"].get("estop", "/cortico/estop")),
            ee_pose_source=str(raw["topics"].get("ee_pose_source", "topic")),
            cameras=cameras,
            safety=limits,
            gripper_type=str(gripper.get("type", "binary")),
            gripper_open_width=float(gripper.get("open_width", 0.08)),
            calibration=calibration,
            control_rate=float(control.get("rate", 20.0)),
            position_tolerance=float(control.get("position_tolerance", 0.01)),
            keyframe_timeout=float(control.get("keyframe_timeout", 15.0)),
            simulated=bool(raw.get("simulated", False)),
            extra=dict(raw.get("extra", {})),
        )
    except TypeError as error:  # unexpected or missing keyword in a section
        raise ProfileError(f"{path}: {error}") from error
