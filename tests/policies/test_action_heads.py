"""Action representation (rotation bins, heatmap targets) and evaluation statistics (Wilson, paired)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cortico.perception.workspace import WorkspaceBounds
from cortico.policies.action_heads import bins_to_quaternion, heatmap_targets, quaternion_to_bins
from cortico.policies.augmentation import SceneAugmentation, transform_actions, transform_points
from cortico.policies.evaluation import EpisodeResult, evaluation_seed, paired_difference, wilson_interval


def test_rotation_bins_round_trip_within_a_bin():
    quaternions = torch.from_numpy(Rotation.random(64, random_state=0).as_quat()).float()
    back = bins_to_quaternion(quaternion_to_bins(quaternions))
    angle = (Rotation.from_quat(back.numpy()).inv() * Rotation.from_quat(quaternions.numpy())).magnitude()
    assert np.degrees(angle).max() < 5.0  # at most half a 5-degree bin on each of three axes
    assert quaternion_to_bins(quaternions).max() < 72


def test_heatmap_targets_peak_at_the_pixel_and_sum_to_one():
    maps = heatmap_targets(torch.tensor([[[10.0, 20.0], [3.0, 40.0]]]), 48, 1.5)
    assert torch.allclose(maps.sum(dim=(-1, -2)), torch.ones(1, 2))
    assert divmod(int(maps[0, 0].argmax()), 48) == (20, 10)


def test_augmentation_moves_cloud_and_target_rigidly():
    bounds = WorkspaceBounds()
    actions = torch.tensor([[0.0, 0.7, 0.1, 0, 0, 0, 1, 1, 0], [0.2, 0.5, 0.2, 0, 0, 0, 1, 0, 0]], dtype=torch.float32)
    rotation, translation = SceneAugmentation().sample(actions, bounds, torch.Generator().manual_seed(0))
    points = torch.rand(2, 50, 3)
    moved = transform_points(points, rotation, translation)
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.allclose(
        torch.cdist(moved, moved, compute_mode=exact), torch.cdist(points, points, compute_mode=exact), atol=1e-5
    )
    moved_actions = transform_actions(actions, rotation, translation)
    assert bounds.contains(moved_actions[:, :3]).all()
    anchor = transform_points(actions[:, None, :3], rotation, translation)[:, 0]
    assert torch.allclose(anchor, moved_actions[:, :3], atol=1e-6)
    assert torch.allclose(moved_actions[:, 7:], actions[:, 7:])


def test_wilson_interval_and_evaluation_seeds():
    low, high = wilson_interval(8, 10)
    assert 0.49 < low < 0.50 and 0.94 < high < 0.95
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert evaluation_seed(0, 0) >= 1_000_000


def test_paired_difference_counts_only_shared_episodes_and_narrows_with_agreement():
    def episodes(successes: list[bool], task: str = "reach") -> dict:
        return {(task, seed): EpisodeResult(task, seed, "", ok, 1) for seed, ok in enumerate(successes)}

    better = episodes([True] * 8 + [False] * 2)
    worse = episodes([True] * 6 + [False] * 4)
    result = paired_difference(better, worse)
    assert result["difference"] == pytest.approx(0.2) and result["episodes"] == 10
    assert (result["only_first_succeeded"], result["only_second_succeeded"]) == (2, 0)
    low, high = result["ci95"]
    assert low < 0.2 < high and high - low < 0.6  # two rates 0.8 and 0.6 alone give intervals ~0.5 wide each
    disagreeing = episodes([False] * 2 + [True] * 8)  # the same rate as `better`, on the other episodes
    apart = paired_difference(better, disagreeing)
    assert apart["difference"] == 0.0 and apart["ci95"][1] - apart["ci95"][0] > 0.5
    more = {**worse, **episodes([True], task="push")}  # an episode only one of them ran does not count
    assert paired_difference(better, more)["episodes"] == 10
    with pytest.raises(ValueError, match="share no episode"):
        paired_difference(better, episodes([True], task="push"))
