"""Geometrically consistent 3D keypoints and their pixels in every real and virtual view.

The static stream samples K keypoints on the fused cloud; because each keypoint is one 3D point, its
pixel in any view is known exactly, so features sampled there in different views describe the same
surface and a consistency loss can align them. Visibility says where a keypoint is actually seen (not
outside the image, not behind another surface).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cortico.perception.point_cloud import EmptyPointCloudError
from cortico.perception.virtual_views import VirtualViewRenderer, VirtualViews


@dataclass(frozen=True)
class KeypointViews:
    """Where keypoints appear: ``pixels (B, V, K, 2)`` (column, row) and ``visible (B, V, K)``, per view name."""

    view_names: tuple[str, ...]
    pixels: torch.Tensor
    visible: torch.Tensor

    def cat(self, other: KeypointViews) -> KeypointViews:
        """Both sets of views together (e.g. real cameras then virtual views)."""
        return KeypointViews(
            self.view_names + other.view_names,
            torch.cat([self.pixels, other.pixels], dim=1),
            torch.cat([self.visible, other.visible], dim=1),
        )


def farthest_point_sample(
    points: torch.Tensor,
    count: int,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    candidates: int | None = 2048,
) -> torch.Tensor:
    """Indices ``(B, count)`` of a farthest-point sample of ``points (B, N, 3)`` among ``mask`` (B, N).

    The search runs over about ``candidates`` points taken at a regular stride from a random offset drawn with
    ``generator`` (the points come in image order, so a stride is a uniform thinning of every camera; a few
    thousand cover the scene far more densely than the keypoints need and keep the search cheap). The first
    keypoint is drawn at random among the valid candidates, every next one is the candidate farthest from
    those chosen. Deterministic for a seeded generator. ``candidates=None`` searches every point.
    """
    batch, num, _ = points.shape
    if count < 1:
        raise ValueError(f"keypoint count must be >= 1, got {count}")
    if mask is None:
        mask = torch.ones(batch, num, dtype=torch.bool, device=points.device)
    empty = torch.nonzero(~mask.any(dim=1)).flatten().tolist()
    if empty:
        raise EmptyPointCloudError(f"samples {empty} have no valid points to sample keypoints from")
    rows = torch.arange(batch, device=points.device)
    stride = max(1, num // candidates) if candidates is not None else 1
    offset = int(torch.randint(stride, (1,), generator=generator)) if stride > 1 else 0
    pool = torch.arange(offset, num, stride, device=points.device).expand(batch, -1)
    pool_mask = mask.gather(1, pool)
    if not pool_mask.any(dim=1).all():  # a sparse mask missed by the stride: search every point instead
        pool = torch.arange(num, device=points.device).expand(batch, num)
        pool_mask = mask
    pool_points = points.gather(1, pool[..., None].expand(-1, -1, 3))
    # a random valid first candidate (scores drawn on the CPU generator, so any device works)
    scores = torch.rand(pool_mask.shape, generator=generator).to(points.device)
    current = torch.where(pool_mask, scores, -1.0).argmax(dim=1)
    distance = torch.where(pool_mask, float("inf"), -1.0)
    chosen = torch.empty(batch, count, dtype=torch.long, device=points.device)
    for i in range(count):
        chosen[:, i] = current
        step = ((pool_points - pool_points[rows, current][:, None, :]) ** 2).sum(dim=-1)
        distance = torch.where(pool_mask, torch.minimum(distance, step), distance)
        current = distance.argmax(dim=1)
    return pool.gather(1, chosen)


def iss_keypoints(points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` keypoints ``(count, 3)``: Open3D's intrinsic-shape-signature points, thinned or topped up by FPS."""
    import open3d as o3d

    if len(points) == 0:
        raise EmptyPointCloudError("no points to sample keypoints from")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    salient = np.asarray(o3d.geometry.keypoint.compute_iss_keypoints(cloud).points, dtype=np.float32)
    generator = torch.Generator().manual_seed(seed)
    if len(salient) >= count:
        index = farthest_point_sample(torch.from_numpy(salient)[None], count, generator=generator)[0]
        return salient[index.numpy()]
    index = farthest_point_sample(
        torch.from_numpy(points.astype(np.float32))[None], count - len(salient), generator=generator
    )
    return np.concatenate([salient, points[index[0].numpy()].astype(np.float32)])


def project_to_cameras(
    positions: torch.Tensor,
    intrinsics: torch.Tensor,
    extrinsics: torch.Tensor,
    depth: torch.Tensor,
    view_names: tuple[str, ...],
    tolerance: float = 0.01,
) -> KeypointViews:
    """Pixels and visibility of keypoints ``(B, K, 3)`` in calibrated cameras.

    Args:
        positions: keypoints in the world frame.
        intrinsics: ``(B, V, 3, 3)``; extrinsics: ``(B, V, 4, 4)`` camera-to-world.
        depth: ``(B, V, H, W)`` measured depth (0 = invalid); a keypoint is visible when the depth at its
            pixel is within ``tolerance`` metres of its own depth.
    """
    world_to_camera = torch.linalg.inv(extrinsics.double()).float()
    rotation, translation = world_to_camera[..., :3, :3], world_to_camera[..., :3, 3]
    local = torch.einsum("bvij,bkj->bvki", rotation, positions.float()) + translation[:, :, None, :]
    z = local[..., 2]
    projected = torch.einsum("bvij,bvkj->bvki", intrinsics.float(), local)
    uv = projected[..., :2] / z.clamp_min(1e-6)[..., None]
    visible = _depth_agrees(uv, z, depth, tolerance) & (z > 0)
    return KeypointViews(view_names, uv, visible)


def project_to_virtual(
    positions: torch.Tensor, views: VirtualViews, renderer: VirtualViewRenderer, tolerance: float = 0.01
) -> KeypointViews:
    """Pixels and visibility of keypoints ``(B, K, 3)`` in rendered virtual views (named ``virtual:<view>``)."""
    uv, depth = renderer.world_to_pixel(positions, views.center, views.half_size)
    rendered = torch.where(views.valid[:, :, 0] > 0, views.depth[:, :, 0], torch.zeros_like(views.depth[:, :, 0]))
    names = tuple(f"virtual:{view}" for view in renderer.views)
    return KeypointViews(names, uv, _depth_agrees(uv, depth, rendered, tolerance))


def _depth_agrees(uv: torch.Tensor, z: torch.Tensor, depth: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Inside the image and the depth map at the nearest pixel matches ``z``: ``(B, V, K)`` bool."""
    height, width = depth.shape[-2:]
    cols = torch.floor(uv[..., 0] + 0.5).long()
    rows = torch.floor(uv[..., 1] + 0.5).long()
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    flat = (rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)).flatten(2)
    measured = depth.flatten(2).gather(2, flat).view_as(z)
    return inside & (measured > 0) & ((measured - z).abs() <= tolerance)
