"""Freshly placed scenes for the frame encoder: real resets of the simulator, labelled like demo frames."""

from __future__ import annotations

import numpy as np

from cortico.envs.task_catalog import TASKS
from cortico.memory.scenes import reset_scenes


def test_reset_scenes_are_new_labelled_placements_and_deterministic() -> None:
    images, states, labels = reset_scenes(["pick-place", "window-close"], 2, image_size=32)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8 and states.shape == (4, 10)
    assert [list(TASKS)[i] for i in labels] == ["pick-place", "pick-place", "window-close", "window-close"]
    assert not np.allclose(states[0, 4:7], states[1, 4:7])  # every scene is another placement
    np.testing.assert_array_equal(states[:, 3], 1.0)  # the gripper starts open
    assert np.abs(states[2:, 4] - 0.21).max() < 0.02  # the window's handle where reset put it, not a stale one
    again = reset_scenes(["pick-place"], 2, image_size=32)
    np.testing.assert_array_equal(again[0], images[:2])
    np.testing.assert_array_equal(again[1], states[:2])
