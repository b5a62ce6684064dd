"""Point-cloud fusion from real observations, and its refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cortico.envs.contract import ObservationError
from cortico.perception.pipeline import observation_to_batch
from cortico.perception.point_cloud import EmptyPointCloudError, fuse_batch, fuse_observation
from cortico.perception.workspace import WorkspaceBounds


def test_fused_cloud_is_cropped_coloured_and_downsampled(live_observation):
    bounds = WorkspaceBounds()
    dense = fuse_observation(live_observation, bounds, voxel_size=None)
    sparse = fuse_observation(live_observation, bounds, voxel_size=0.01)
    assert 0 < len(sparse) < len(dense)
    for cloud in (dense, sparse):
        assert bounds.contains(cloud.points).all()
        assert cloud.colors.min() >= 0 and cloud.colors.max() <= 1
    # every camera contributes: the fused cloud is larger than any single camera's part
    single = fuse_observation(live_observation, bounds, voxel_size=None, cameras=["front"])
    assert len(dense) > len(single)
    # the table top is at z = 0: a large share of the cloud lies on it
    assert np.mean(np.abs(dense.points[:, 2]) < 0.01) > 0.2


def test_batch_fusion_matches_the_single_observation(live_observation):
    batch = observation_to_batch(live_observation)
    points, colors, mask = fuse_batch(batch["points"], batch["rgb"], batch["depth"])
    dense = fuse_observation(live_observation, voxel_size=None)
    assert int(mask.sum()) == len(dense)
    np.testing.assert_allclose(np.sort(points[0][mask[0]].numpy(), axis=0), np.sort(dense.points, axis=0), atol=1e-6)
    assert colors.max() <= 1.0


def test_empty_and_invalid_inputs_are_refused(live_observation):
    far = WorkspaceBounds((5, 5, 5), (6, 6, 6))
    with pytest.raises(EmptyPointCloudError, match="no valid point"):
        fuse_observation(live_observation, far)
    batch = observation_to_batch(live_observation)
    with pytest.raises(EmptyPointCloudError, match="samples \\[0\\]"):
        fuse_batch(batch["points"], batch["rgb"], batch["depth"], far)
    bad_depth = batch["depth"].clone()
    bad_depth[0, 0, 5, 5] = float("nan")
    with pytest.raises(ObservationError, match="NaN"):
        fuse_batch(batch["points"], batch["rgb"], bad_depth)
    with pytest.raises(ValueError, match="must match"):
        fuse_batch(batch["points"], batch["rgb"][..., :2], batch["depth"])
    frame = live_observation.cameras["front"]
    shifted = dataclasses.replace(frame, intrinsics=frame.intrinsics + np.array([[0, 0, 500], [0, 0, 0], [0, 0, 0]]))
    broken = dataclasses.replace(live_observation, cameras={"front": shifted})
    with pytest.raises(ObservationError, match="do not match"):
        fuse_observation(broken)
    with pytest.raises(ValueError, match="not in the observation"):
        fuse_observation(live_observation, cameras=["overhead"])
    with pytest.raises(ValueError, match="voxel size"):
        fuse_observation(live_observation, voxel_size=-1.0)
    assert torch.is_tensor(batch["rgb"])
