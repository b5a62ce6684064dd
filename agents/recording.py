"""Rollout videos of the agent: every camera side by side, the gaze fixation drawn on the wrist view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cortico.envs.contract import Observation
from cortico.envs.visualize import caption, write_video

FIXATION_COLOUR = (255, 40, 40)


def draw_fixation(image: np.ndarray, fixation: tuple[float, float] | None, radius: int = 4) -> np.ndarray:
    """The image with a ring around the gaze fixation ``(column, row)`` (unchanged when None)."""
    if fixation is None:
        return image
    picture = Image.fromarray(np.ascontiguousarray(image))
    column, row = fixation
    ImageDraw.Draw(picture).ellipse(
        (column - radius, row - radius, column + radius, row + radius), outline=FIXATION_COLOUR, width=2
    )
    return np.asarray(picture)


class RolloutRecorder:
    """Collects video frames from the agent's ``on_frame`` callback (every ``stride``-th remembered frame).

    Args:
        cameras: cameras to tile, in order (each must be rendered at every step: pass them to the agent
            as ``video_cameras``).
        stride: keep every n-th frame.
        max_frames: stop recording after this many frames (long sessions stay bounded).
    """

    def __init__(self, cameras: tuple[str, ...], stride: int = 2, max_frames: int = 2000) -> None:
        self.cameras = cameras
        self.stride = max(1, stride)
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []
        self._seen = 0

    def __call__(self, agent: Any, observation: Observation, facts: dict[str, Any]) -> None:
        """Keep a captioned frame of every camera (the agent's ``on_frame`` callback)."""
        self._seen += 1
        if (self._seen - 1) % self.stride or len(self.frames) >= self.max_frames:
            return
        fixation = agent.perception.fixation(observation, facts["instruction"])
        tiles = []
        for name in self.cameras:
            if name not in observation.cameras:
                continue
            rgb = observation.cameras[name].rgb
            tiles.append(draw_fixation(rgb, fixation) if name == "wrist" else rgb)
        if not tiles:
            return
        grip = "open" if facts.get("gripper_open", 1.0) >= 0.5 else "closed"
        done = " SUCCESS" if facts.get("success") else ""
        text = f"{facts['instruction']} | t={agent.session_time:.2f}s gripper {grip}{done}"
        self.frames.append(caption(np.concatenate(tiles, axis=1), text))

    def write(self, path: str | Path, fps: float = 20.0) -> Path:
        """Write the video (MP4 or GIF by suffix)."""
        return write_video(path, self.frames, fps=fps)
