"""ROS message conversion, shared by the native ROS 1 and the rosbridge transports.

Both transports hand messages around as the dictionaries the rosbridge v2 protocol puts on the wire
(JSON: ``uint8[]`` data base64-encoded, times as ``{"secs", "nsecs"}``). The native transport converts
rospy messages to and from this form (:func:`message_to_dict`, :func:`dict_to_message`); everything
else here turns these dictionaries into numpy arrays and back.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

IMAGE_ENCODINGS = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "32FC1": (np.float32, 1), "16UC1": (np.uint16, 1)}


class MessageError(ValueError):
    """A message does not have the fields, encoding or size the robot profile promises."""


# -------------------------------------------------------------------------------------------- headers
def stamp_to_seconds(stamp: dict[str, int]) -> float:
    """``{"secs", "nsecs"}`` to float seconds."""
    return float(stamp["secs"]) + 1e-9 * float(stamp["nsecs"])


def seconds_to_stamp(seconds: float) -> dict[str, int]:
    """Float seconds to ``{"secs", "nsecs"}``."""
    secs = int(np.floor(seconds))
    return {"secs": secs, "nsecs": int(round((seconds - secs) * 1e9)) % 1_000_000_000}


def header(stamp: float, frame_id: str, seq: int = 0) -> dict[str, Any]:
    """A ``std_msgs/Header`` dictionary."""
    return {"seq": seq, "stamp": seconds_to_stamp(stamp), "frame_id": frame_id}


# --------------------------------------------------------------------------------------------- images
def image_to_dict(array: np.ndarray, encoding: str, stamp: float, frame_id: str) -> dict[str, Any]:
    """A ``sensor_msgs/Image`` dictionary from an ``(H, W[, C])`` array."""
    if encoding not in IMAGE_ENCODINGS:
        raise MessageError(f"unsupported image encoding {encoding!r}; supported: {list(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    height, width = array.shape[:2]
    return {
        "header": header(stamp, frame_id),
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * channels * np.dtype(dtype).itemsize,
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def image_from_dict(message: dict[str, Any], expected: str | None = None) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` dictionary (``bgr8`` is returned as RGB; depth stays as sent)."""
    try:
        encoding, height, width, step = (
            message["encoding"],
            int(message["height"]),
            int(message["width"]),
            int(message["step"]),
        )
        data = message["data"]
    except KeyError as error:
        raise MessageError(f"image message lacks field {error}") from error
    if expected is not None and encoding != expected:
        raise MessageError(f"image encoding is {encoding!r}, the profile expects {expected!r}")
    if encoding not in IMAGE_ENCODINGS:
        raise MessageError(f"unsupported image encoding {encoding!r}; supported: {list(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
    row = width * channels * np.dtype(dtype).itemsize
    if step < row or len(raw) != step * height:
        raise MessageError(
            f"image data has {len(raw)} bytes; {height} rows of {step} bytes ({width}x{channels} {encoding}) expected"
        )
    array = np.frombuffer(raw, dtype=np.uint8).reshape(height, step)[:, :row].copy().view(dtype)
    if message.get("is_bigendian") and np.dtype(dtype).itemsize > 1:
        array = array.byteswap()
    array = array.reshape(height, width, channels) if channels > 1 else array.reshape(height, width)
    return array[..., ::-1].copy() if encoding == "bgr8" else array


def depth_in_metres(depth: np.ndarray, encoding: str, scale: float = 0.001) -> np.ndarray:
    """Depth image to float32 metres with 0 for invalid (``16UC1`` is in ``scale`` metres, e.g. mm)."""
    metres = depth.astype(np.float32) * (scale if encoding == "16UC1" else 1.0)
    metres[~np.isfinite(metres) | (metres < 0)] = 0.0
    return metres


# ---------------------------------------------------------------------------------- camera info, poses
def camera_info_to_dict(intrinsics: np.ndarray, height: int, width: int, stamp: float, frame_id: str) -> dict[str, Any]:
    """A ``sensor_msgs/CameraInfo`` dictionary for an undistorted pinhole camera."""
    k = np.asarray(intrinsics, dtype=float)
    projection = np.hstack([k, np.zeros((3, 1))])
    return {
        "header": header(stamp, frame_id), "height": height, "width": width, "distortion_model": "plumb_bob",
        "D": [0.0] * 5, "K": k.ravel().tolist(), "R": np.eye(3).ravel().tolist(), "P": projection.ravel().tolist(),
        "binning_x": 0, "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }  # fmt: skip


def intrinsics_from_camera_info(message: dict[str, Any]) -> tuple[np.ndarray, int, int]:
    """``(K (3, 3), height, width)`` of a ``sensor_msgs/CameraInfo`` dictionary."""
    k = np.asarray(message.get("K", []), dtype=float)
    if k.shape != (9,) or k[0] <= 0 or k[4] <= 0:
        raise MessageError(f"camera info K must be 9 numbers with positive focal lengths, got {message.get('K')}")
    return k.reshape(3, 3), int(message["height"]), int(message["width"])


def pose_to_dict(pose: np.ndarray, stamp: float, frame_id: str) -> dict[str, Any]:
    """A ``geometry_msgs/PoseStamped`` dictionary from ``(7,)`` xyz + quaternion xyzw."""
    x, y, z, qx, qy, qz, qw = (float(v) for v in pose)
    return {
        "header": header(stamp, frame_id),
        "pose": {"position": {"x": x, "y": y, "z": z}, "orientation": {"x": qx, "y": qy, "z": qz, "w": qw}},
    }


def pose_from_dict(message: dict[str, Any], expected_frame: str | None = None) -> np.ndarray:
    """``(7,)`` xyz + quaternion xyzw of a ``geometry_msgs/PoseStamped`` dictionary."""
    frame = message.get("header", {}).get("frame_id", "")
    if expected_frame is not None and frame != expected_frame:
        raise MessageError(f"pose is in frame {frame!r}, the profile expects {expected_frame!r}")
    try:
        p, o = message["pose"]["position"], message["pose"]["orientation"]
        pose = np.array([p["x"], p["y"], p["z"], o["x"], o["y"], o["z"], o["w"]], dtype=float)
    except (KeyError, TypeError) as error:
        raise MessageError(f"pose message lacks field {error}") from error
    if not np.isfinite(pose).all():
        raise MessageError("pose message contains NaN or inf")
    return pose


def joint_state_to_dict(
    names: list[str], positions: np.ndarray, velocities: np.ndarray, stamp: float
) -> dict[str, Any]:
    """A ``sensor_msgs/JointState`` dictionary."""
    return {"header": header(stamp, ""), "name": list(names), "position": [float(v) for v in positions],
            "velocity": [float(v) for v in velocities], "effort": []}  # fmt: skip


def joints_from_dict(message: dict[str, Any], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of ``names`` (in that order) from a ``sensor_msgs/JointState`` dictionary."""
    index = {name: i for i, name in enumerate(message.get("name", []))}
    missing = [n for n in names if n not in index]
    if missing:
        raise MessageError(f"joint state lacks joints {missing}; it has {list(index)}")
    positions = np.asarray(message.get("position", []), dtype=float)
    velocities = np.asarray(message.get("velocity", []), dtype=float)
    pick = [index[n] for n in names]
    return positions[pick], (velocities[pick] if len(velocities) == len(index) else np.zeros(len(names)))


def trajectory_to_dict(names: list[str], positions: np.ndarray, duration: float, stamp: float) -> dict[str, Any]:
    """A one-point ``trajectory_msgs/JointTrajectory`` dictionary reaching ``positions`` after ``duration`` s."""
    return {
        "header": header(stamp, ""), "joint_names": list(names),
        "points": [{"positions": [float(v) for v in positions], "velocities": [], "accelerations": [], "effort": [],
                    "time_from_start": seconds_to_stamp(duration)}],
    }  # fmt: skip


# ------------------------------------------------------------------------------- rospy <-> dictionary
def message_to_dict(message: Any, binary_as_base64: bool = True) -> Any:
    """Any rospy (genpy) message to the rosbridge dictionary form.

    ``binary_as_base64=False`` keeps ``uint8[]`` fields as raw bytes (the native transport's fast path; every
    decoder here accepts both).
    """
    if hasattr(message, "__slots__") and hasattr(message, "_slot_types"):
        return {
            slot: _field_to_dict(getattr(message, slot), kind, binary_as_base64)
            for slot, kind in zip(message.__slots__, message._slot_types)
        }
    if hasattr(message, "secs") and hasattr(message, "nsecs"):
        return {"secs": int(message.secs), "nsecs": int(message.nsecs)}
    return message


def _field_to_dict(value: Any, kind: str, binary_as_base64: bool) -> Any:
    if kind in ("uint8[]", "char[]") or (kind.startswith("uint8[") and kind.endswith("]")):
        raw = value if isinstance(value, (bytes, bytearray)) else bytes(value)
        return base64.b64encode(raw).decode("ascii") if binary_as_base64 else bytes(raw)
    if isinstance(value, (list, tuple)):
        return [message_to_dict(v, binary_as_base64) for v in value]
    return message_to_dict(value, binary_as_base64)


def dict_to_message(message_class: type, data: dict[str, Any]) -> Any:
    """A rospy message of ``message_class`` filled from the rosbridge dictionary form."""
    import genpy

    message = message_class()
    for slot, kind in zip(message.__slots__, message._slot_types):
        if slot not in data:
            continue
        value = data[slot]
        current = getattr(message, slot)
        if kind in ("time", "duration"):
            cls = genpy.Time if kind == "time" else genpy.Duration
            value = cls(int(value["secs"]), int(value["nsecs"]))
        elif kind in ("uint8[]", "char[]"):
            value = base64.b64decode(value) if isinstance(value, str) else bytes(value)
        elif hasattr(current, "__slots__") and isinstance(value, dict):
            value = dict_to_message(type(current), value)
        elif kind.endswith("[]") and "/" in kind:
            element_class = _message_class(kind[:-2])
            value = [dict_to_message(element_class, v) for v in value]
        setattr(message, slot, value)
    return message


def _message_class(type_name: str) -> type:
    """``"pkg/Name"`` to the rospy message class."""
    import importlib

    package, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)
