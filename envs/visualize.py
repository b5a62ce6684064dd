"""Pictures of episodes: a contact sheet (cameras x keyframes) and a video with every camera side by side."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cortico.atomic import atomic_path
from cortico.envs.episode import EpisodeRecord

VIDEO_SUFFIXES = (".mp4", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def depth_to_image(depth: np.ndarray) -> np.ndarray:
    """Grey-scale picture of a depth map (near = bright, far = dark, invalid = black) as ``(H, W, 3)`` uint8.

    The grey range spans this image's valid depths from the 2nd percentile to the 98th (at most 3x the
    median, so a distant floor or wall does not flatten the table).
    """
    valid = depth > 0
    if not valid.any():
        return np.zeros((*depth.shape, 3), dtype=np.uint8)
    near, median, far = np.percentile(depth[valid], [2, 50, 98])
    far = max(min(far, 3.0 * median), near + 1e-3)
    scaled = np.clip((far - depth) / (far - near), 0.0, 1.0)
    grey = np.where(valid, 40 + 215 * scaled, 0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def caption(image: np.ndarray, text: str, height: int = 14) -> np.ndarray:
    """Image with a black caption band on top."""
    band = Image.new("RGB", (image.shape[1], height), (0, 0, 0))
    ImageDraw.Draw(band).text((2, 1), text, fill=(255, 255, 255))
    return np.concatenate([np.asarray(band), image], axis=0)


def contact_sheet(record: EpisodeRecord, *, max_columns: int = 8, with_depth: bool = True) -> np.ndarray:
    """Grid image: one column per keyframe (plus the first step), one row per camera (RGB, then depth).

    Args:
        record: an episode with images.
        max_columns: keep at most this many columns (evenly spread keyframes).
        with_depth: add a depth row under each camera's RGB row.
    """
    if not record.cameras:
        raise ValueError(f"episode ({record.task}, seed {record.seed}) has no images to show")
    frame_of_step = {int(s): i for i, s in enumerate(record.frame_steps)}
    steps = [s for s in [0, *record.keyframes] if s in frame_of_step]
    if len(steps) > max_columns:
        keep = np.linspace(0, len(steps) - 1, max_columns).round().astype(int)
        steps = [steps[i] for i in keep]
    columns = []
    for step in steps:
        frame = frame_of_step[step]
        tiles = []
        for name, seq in record.cameras.items():
            tiles.append(caption(seq.rgb[frame], f"{name} t={step}"))
            if with_depth:
                tiles.append(caption(depth_to_image(seq.depth[frame]), f"{name} depth"))
        grip = "open" if record.gripper_open[step] >= 0.5 else "closed"
        header = caption(np.zeros((0, tiles[0].shape[1], 3), np.uint8), f"step {step} {grip}")
        columns.append(np.concatenate([header, *tiles], axis=0))
    sheet = np.concatenate(columns, axis=1)
    title = f"{record.task} (seed {record.seed}): {record.instruction}"
    return caption(sheet, title, height=16)


def episode_frames(record: EpisodeRecord) -> list[np.ndarray]:
    """One image per stored frame: every camera side by side, captioned with time and gripper state."""
    if not record.cameras:
        raise ValueError(f"episode ({record.task}, seed {record.seed}) has no images to show")
    keyframes = set(record.keyframes)
    frames = []
    for index, step in enumerate(record.frame_steps):
        row = np.concatenate([seq.rgb[index] for seq in record.cameras.values()], axis=1)
        marker = " KEYFRAME" if int(step) in keyframes else ""
        grip = "open" if record.gripper_open[step] >= 0.5 else "closed"
        text = f"{record.instruction} | t={record.time[step]:.2f}s step {int(step)} gripper {grip}{marker}"
        frames.append(caption(row, text))
    return frames


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an image atomically (format from the suffix)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"unsupported image type {path.suffix!r}; use one of {IMAGE_SUFFIXES}")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG" if path.suffix.lower() == ".png" else "JPEG")
    return path


def write_video(path: str | os.PathLike[str], frames: list[np.ndarray], fps: float = 20.0) -> Path:
    """Write frames as an MP4 (H.264 through imageio-ffmpeg's bundled ffmpeg) or an animated GIF, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"unsupported video type {path.suffix!r}; use one of {VIDEO_SUFFIXES}")
    if not frames:
        raise ValueError("no frames to write")
    # H.264 wants even sizes
    height, width = frames[0].shape[:2]
    frames = [f[: height - height % 2, : width - width % 2] for f in frames]
    with atomic_path(path) as tmp:
        if suffix == ".gif":
            images = [Image.fromarray(f) for f in frames]
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        else:
            import imageio_ffmpeg

            height, width = frames[0].shape[:2]
            writer = imageio_ffmpeg.write_frames(
                str(tmp),
                (width, height),
                fps=fps,
                codec="libx264",
                macro_block_size=1,
                output_params=["-f", "mp4"],
                ffmpeg_log_level="error",
            )
            writer.send(None)
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
            writer.close()
    return path
