"""One demonstration episode per HDF5 file, written atomically.

Layout (``FORMAT_VERSION`` 1)::

    attrs: format, format_version, task, instruction, seed, success, control_dt, cameras (JSON), image_size
    steps/{gripper_pose (T,7), gripper_open (T,), joint_positions (T,J), joint_velocities (T,J),
           gripper_joint_positions (T,G), time (T,), state (T,S), actions (T-1,4),
           hand_contact (T,) bool (optional: demos from expert revision 4 on)}
    keyframes (K,) int64, keyframe_actions (K,9) float32
    frames/step (F,) int64                      step index of each stored image frame
    frames/<camera>/{rgb (F,H,W,3) uint8, depth (F,H,W) float32, intrinsics (F,3,3), extrinsics (F,4,4)}

HDF5 (h5py) is the store robomimic and many robot-learning datasets use: typed arrays with per-frame
chunks (random access to one frame for training), compression, and metadata in one portable file.
Points are not stored; they are recomputed exactly from depth and calibration on load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from cortico.atomic import atomic_path
from cortico.envs.episode import CameraSequence, EpisodeRecord

FORMAT = "cortico-episode"
FORMAT_VERSION = 1
STEP_FIELDS = (
    "gripper_pose",
    "gripper_open",
    "joint_positions",
    "joint_velocities",
    "gripper_joint_positions",
    "time",
    "state",
)
CAMERA_FIELDS = ("rgb", "depth", "intrinsics", "extrinsics")


class CorruptEpisodeError(ValueError):
    """An episode file is unreadable, truncated or inconsistent."""


def write_episode(path: str | os.PathLike[str], record: EpisodeRecord, *, compression: int = 1) -> int:
    """Write ``record`` to ``path`` atomically and return the file size in bytes.

    ``compression`` is the gzip level: 1 writes twice as fast as 4 for about 6% larger files.
    """
    if not record.success:
        raise ValueError(f"refusing to store an unsuccessful demonstration ({record.task}, seed {record.seed})")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "task": record.task,
                    "instruction": record.instruction,
                    "seed": record.seed,
                    "success": record.success,
                    "control_dt": record.control_dt,
                    "cameras": json.dumps(list(record.cameras)),
                    "image_size": _image_size(record),
                }
            )
            steps = f.create_group("steps")
            for name in STEP_FIELDS:
                steps.create_dataset(name, data=getattr(record, name))
            steps.create_dataset("actions", data=record.actions)
            if len(record.hand_contact):
                steps.create_dataset("hand_contact", data=np.asarray(record.hand_contact, dtype=bool))
            f.create_dataset("keyframes", data=np.asarray(record.keyframes, dtype=np.int64))
            actions = [action.to_array() for action in record.keyframe_actions()]
            f.create_dataset("keyframe_actions", data=np.asarray(actions, dtype=np.float32).reshape(-1, 9))
            frames = f.create_group("frames")
            frames.create_dataset("step", data=np.asarray(record.frame_steps, dtype=np.int64))
            for camera, seq in record.cameras.items():
                group = frames.create_group(camera)
                size = seq.rgb.shape[1:3]
                group.create_dataset(
                    "rgb", data=seq.rgb, chunks=(1, *size, 3), compression="gzip", compression_opts=compression
                )
                group.create_dataset(
                    "depth",
                    data=seq.depth,
                    chunks=(1, *size),
                    compression="gzip",
                    compression_opts=compression,
                    shuffle=True,
                )
                group.create_dataset("intrinsics", data=seq.intrinsics)
                group.create_dataset("extrinsics", data=seq.extrinsics)
    return Path(path).stat().st_size


def _image_size(record: EpisodeRecord) -> int:
    sizes = {seq.rgb.shape[1] for seq in record.cameras.values()}
    return sizes.pop() if len(sizes) == 1 else 0


def read_episode(path: str | os.PathLike[str], *, with_images: bool = True) -> EpisodeRecord:
    """Load a whole episode file (images included unless ``with_images`` is False)."""
    try:
        with h5py.File(path, "r") as f:
            _check_layout(f)
            steps = f["steps"]
            record = EpisodeRecord(
                task=str(f.attrs["task"]),
                instruction=str(f.attrs["instruction"]),
                seed=int(f.attrs["seed"]),
                success=bool(f.attrs["success"]),
                control_dt=float(f.attrs["control_dt"]),
                **{name: steps[name][()] for name in STEP_FIELDS},
                actions=steps["actions"][()],
                keyframes=[int(k) for k in f["keyframes"][()]],
                frame_steps=f["frames/step"][()],
                hand_contact=steps["hand_contact"][()] if "hand_contact" in steps else np.zeros(0, dtype=bool),
            )
            if with_images:
                record.cameras = {
                    camera: CameraSequence(**{key: f[f"frames/{camera}/{key}"][()] for key in CAMERA_FIELDS})
                    for camera in json.loads(f.attrs["cameras"])
                }
            return record
    except CorruptEpisodeError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise CorruptEpisodeError(f"{path}: cannot read episode ({error})") from error


def validate_episode(path: str | os.PathLike[str]) -> None:
    """Raise :class:`CorruptEpisodeError` with the reason when the file is not a complete episode.

    Reads every array (so truncated or corrupt compressed chunks are found), not only the metadata.
    """
    try:
        with h5py.File(path, "r") as f:
            _check_layout(f)
            for camera in json.loads(f.attrs["cameras"]):
                for key in CAMERA_FIELDS:
                    data = f[f"frames/{camera}/{key}"]
                    for index in range(data.shape[0]):
                        data[index]
    except CorruptEpisodeError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise CorruptEpisodeError(f"{path}: {error}") from error


def _check_layout(f: h5py.File) -> None:
    """Check format tag, required datasets and that their shapes agree."""
    name = f.filename
    if f.attrs.get("format") != FORMAT:
        raise CorruptEpisodeError(f"{name}: not a cortico episode file (format attribute {f.attrs.get('format')!r})")
    version = int(f.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise CorruptEpisodeError(f"{name}: episode format version {version}; this cortico reads {FORMAT_VERSION}")
    for key in ("steps", "keyframes", "keyframe_actions", "frames/step"):
        if key not in f:
            raise CorruptEpisodeError(f"{name}: missing '{key}'")
    steps = f["steps"]
    missing = [field for field in (*STEP_FIELDS, "actions") if field not in steps]
    if missing:
        raise CorruptEpisodeError(f"{name}: missing step fields {missing}")
    num_steps = steps["gripper_pose"].shape[0]
    for field in (*STEP_FIELDS, *(["hand_contact"] if "hand_contact" in steps else [])):
        if steps[field].shape[0] != num_steps:
            raise CorruptEpisodeError(f"{name}: steps/{field} has {steps[field].shape[0]} rows, expected {num_steps}")
    if steps["actions"].shape[0] != num_steps - 1:
        raise CorruptEpisodeError(f"{name}: {steps['actions'].shape[0]} actions for {num_steps} steps")
    keyframes = f["keyframes"][()]
    if len(keyframes) == 0:
        raise CorruptEpisodeError(f"{name}: episode has no keyframes")
    if keyframes.min() < 1 or keyframes.max() >= num_steps or np.any(np.diff(keyframes) <= 0):
        raise CorruptEpisodeError(
            f"{name}: keyframe indices {keyframes.tolist()} are not increasing in 1..{num_steps - 1}"
        )
    if f["keyframe_actions"].shape != (len(keyframes), 9):
        raise CorruptEpisodeError(
            f"{name}: keyframe_actions shape {f['keyframe_actions'].shape} != ({len(keyframes)}, 9)"
        )
    frame_steps = f["frames/step"][()]
    if len(frame_steps) and (frame_steps.min() < 0 or frame_steps.max() >= num_steps):
        raise CorruptEpisodeError(f"{name}: frame step indices out of range 0..{num_steps - 1}")
    for camera in json.loads(f.attrs["cameras"]):
        for key in CAMERA_FIELDS:
            path = f"frames/{camera}/{key}"
            if path not in f:
                raise CorruptEpisodeError(f"{name}: missing '{path}'")
            if f[path].shape[0] != len(frame_steps):
                raise CorruptEpisodeError(f"{name}: {path} has {f[path].shape[0]} frames, expected {len(frame_steps)}")
