"""A hand-built stream whose every fact is known, for the question generator and the benchmark's checks."""

from __future__ import annotations

import numpy as np
import pytest

from cortico.memory.streams import Stream, StreamEpisode


@pytest.fixture
def stream():
    """Four tasks of 10 frames: drawer-open, button-press, pick-place, drawer-close (0.1 s per frame)."""
    n = 40
    times = np.arange(n) * 0.1
    gripper_open = np.ones(n)
    gripper_open[24:29] = 0.0  # pick-place grasps at frame 24 and releases at 29
    gripper = np.tile([0.2, 0.8, 0.2], (n, 1))  # far right ...
    gripper[24] = [-0.2, 0.5, 0.05]  # ... except at the grasp: near left
    objects = np.tile([0.1, 0.7, 0.0], (n, 1))  # far right
    objects[10:20] = [-0.1, 0.5, 0.0]  # the button is near left
    objects[20:30] = [0.1, 0.5, 0.0]  # the puck starts near right ...
    objects[29] = [-0.1, 0.8, 0.1]  # ... and ends far left
    episodes = [
        StreamEpisode("drawer-open", "open the drawer", 0, 0, 10, [3, 9], 8),
        StreamEpisode("button-press", "press the button", 1, 10, 20, [14, 19], 18),
        StreamEpisode("pick-place", "pick the puck", 2, 20, 30, [24, 27, 29], 28),
        StreamEpisode("drawer-close", "close the drawer", 3, 30, 40, [35, 39], 38),
    ]
    return Stream(
        images=np.zeros((n, 8, 8, 3), np.uint8), times=times, episode=np.repeat(np.arange(4), 10),
        gripper_open=gripper_open, gripper=gripper, object=objects, goal=np.tile([0.0, 0.9, 0.1], (n, 1)),
        episodes=episodes,
    )  # fmt: skip
