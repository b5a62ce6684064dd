"""3D keypoints: deterministic farthest-point sampling and consistent pixels in every view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cortico.perception.keypoints import farthest_point_sample, iss_keypoints, project_to_cameras, project_to_virtual
from cortico.perception.pipeline import observation_to_batch
from cortico.perception.point_cloud import EmptyPointCloudError, fuse_batch, fuse_observation
from cortico.perception.virtual_views import VirtualViewRenderer


def test_fps_is_deterministic_spread_and_respects_the_mask():
    points = torch.rand(2, 2000, 3)
    mask = torch.rand(2, 2000) > 0.3
    first = farthest_point_sample(points, 32, mask, torch.Generator().manual_seed(4))
    again = farthest_point_sample(points, 32, mask, torch.Generator().manual_seed(4))
    other = farthest_point_sample(points, 32, mask, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert mask.gather(1, first).all()
    chosen = points[0, first[0]]
    random = points[0, torch.nonzero(mask[0]).flatten()[:32]]
    spread = lambda p: torch.cdist(p, p).add(torch.eye(32) * 9).min()  # noqa: E731
    assert spread(chosen) > 2 * spread(random)
    with pytest.raises(EmptyPointCloudError):
        farthest_point_sample(points, 4, torch.zeros(2, 2000, dtype=torch.bool))


def _keypoints(observation, count=48):
    batch = observation_to_batch(observation)
    points, colors, mask = fuse_batch(batch["points"], batch["rgb"], batch["depth"])
    index = farthest_point_sample(points, count, mask, torch.Generator().manual_seed(0))
    return batch, points, colors, mask, torch.gather(points, 1, index[..., None].expand(-1, -1, 3))


def test_keypoint_pixels_have_matching_depth_in_real_cameras(live_observation):
    batch, _, _, _, keypoints = _keypoints(live_observation)
    names = tuple(live_observation.cameras)
    views = project_to_cameras(keypoints, batch["intrinsics"], batch["extrinsics"], batch["depth"], names, 0.01)
    assert views.pixels.shape == (1, len(names), 48, 2)
    # every keypoint is a pixel of some camera, so it is visible somewhere
    assert views.visible[0].any(dim=0).all()
    for v, name in enumerate(names):
        frame = live_observation.cameras[name]
        for k in torch.nonzero(views.visible[0, v]).flatten().tolist():
            col, row = np.floor(views.pixels[0, v, k].numpy() + 0.5).astype(int)
            assert np.linalg.norm(frame.points[row, col] - keypoints[0, k].numpy()) < 0.03, f"{name}: keypoint {k}"
    assert views.visible[0].float().mean() > 0.3


def test_keypoint_pixels_in_virtual_views_show_the_keypoint(live_observation):
    _, points, colors, mask, keypoints = _keypoints(live_observation)
    renderer = VirtualViewRenderer(("top", "front", "left"), image_size=128)
    rendered = renderer.render(points, colors, mask)
    views = project_to_virtual(keypoints, rendered, renderer, 0.01)
    assert views.view_names == ("virtual:top", "virtual:front", "virtual:left")
    pixel = 2 * renderer.bounds.half_size / 128
    checked = 0
    for v in range(3):
        for k in torch.nonzero(views.visible[0, v]).flatten().tolist():
            col, row = torch.floor(views.pixels[0, v, k] + 0.5).long().tolist()
            shown = rendered.xyz[0, v, :, row, col]
            assert (shown - keypoints[0, k]).norm() < 0.01 + pixel
            checked += 1
    assert checked > 40  # the top view sees most of them


def test_iss_keypoints_lie_on_the_cloud(live_observation):
    cloud = fuse_observation(live_observation, voxel_size=0.01)
    keypoints = iss_keypoints(cloud.points, 16, seed=1)
    assert keypoints.shape == (16, 3)
    nearest = np.min(np.linalg.norm(cloud.points[None] - keypoints[:, None], axis=-1), axis=1)
    assert nearest.max() < 1e-4
    np.testing.assert_array_equal(keypoints, iss_keypoints(cloud.points, 16, seed=1))
