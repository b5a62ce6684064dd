"""Fuse the cameras' world-frame clouds into one coloured cloud, cropped to the workspace.

Two forms of the same operation: :func:`fuse_observation` for one observation (numpy, voxel
down-sampling by Open3D), used by the agent loop and the real arm; :func:`fuse_batch` for training
batches (torch, no down-sampling: the virtual-view renderer's z-buffer does that job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cortico.envs.contract import CameraFrame, Observation, ObservationError
from cortico.perception.workspace import WorkspaceBounds


class EmptyPointCloudError(ValueError):
    """No valid point is left after dropping invalid depth and cropping to the workspace."""


@dataclass(frozen=True)
class PointCloud:
    """A coloured cloud: ``points`` ``(N, 3)`` float32 world frame, ``colors`` ``(N, 3)`` float32 in [0, 1]."""

    points: np.ndarray
    colors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def _check_frame(name: str, frame: CameraFrame) -> None:
    """Reject frames whose arrays disagree or hold non-finite geometry."""
    height, width = frame.depth.shape
    if frame.rgb.shape[:2] != (height, width) or frame.points.shape[:2] != (height, width):
        raise ObservationError(
            f"camera {name}: rgb {frame.rgb.shape[:2]}, depth {(height, width)} and points "
            f"{frame.points.shape[:2]} must have the same image size"
        )
    cx, cy = frame.intrinsics[0, 2], frame.intrinsics[1, 2]
    if not (0 <= cx <= width and 0 <= cy <= height):
        raise ObservationError(
            f"camera {name}: intrinsics put the principal point at ({cx:.1f}, {cy:.1f}), outside the "
            f"{width}x{height} image; intrinsics and image size do not match"
        )
    if not np.isfinite(frame.depth).all():
        raise ObservationError(f"camera {name}: depth contains NaN or inf values")


def fuse_observation(
    observation: Observation,
    bounds: WorkspaceBounds | None = None,
    *,
    voxel_size: float | None = 0.005,
    cameras: Sequence[str] | None = None,
) -> PointCloud:
    """Merge the cameras' clouds, drop invalid depth, crop to ``bounds`` and voxel-down-sample.

    Args:
        observation: an observation (every camera carries world-frame points).
        bounds: workspace box (default :class:`WorkspaceBounds`).
        voxel_size: edge of the down-sampling voxels in metres (Open3D; points and colours averaged per
            voxel); ``None`` keeps every point.
        cameras: cameras to use (default all; a wrist camera adds close-up detail).

    Raises:
        EmptyPointCloudError: nothing valid is left.
        ObservationError: a camera's arrays are inconsistent or its depth is not finite.
    """
    bounds = bounds or WorkspaceBounds()
    names = list(cameras) if cameras is not None else list(observation.cameras)
    unknown = [n for n in names if n not in observation.cameras]
    if unknown:
        raise ValueError(f"cameras {unknown} are not in the observation; it has {list(observation.cameras)}")
    points, colors = [], []
    for name in names:
        frame = observation.cameras[name]
        _check_frame(name, frame)
        keep = frame.depth > 0
        keep &= bounds.contains(frame.points)
        points.append(frame.points[keep])
        colors.append(frame.rgb[keep])
    cloud_points = np.concatenate(points).astype(np.float32)
    if len(cloud_points) == 0:
        raise EmptyPointCloudError(
            f"no valid point inside the workspace {bounds.low}..{bounds.high} in cameras {names}"
        )
    cloud_colors = np.concatenate(colors).astype(np.float32) / 255.0
    if voxel_size is not None:
        cloud_points, cloud_colors = voxel_downsample(cloud_points, cloud_colors, voxel_size)
    return PointCloud(cloud_points, cloud_colors)


def voxel_downsample(points: np.ndarray, colors: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Average points and colours per voxel with Open3D."""
    import open3d as o3d

    if voxel_size <= 0:
        raise ValueError(f"voxel size must be > 0 metres, got {voxel_size}")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colors.astype(np.float64))
    down = cloud.voxel_down_sample(voxel_size)
    return np.asarray(down.points, dtype=np.float32), np.asarray(down.colors, dtype=np.float32)


def fuse_batch(
    points: torch.Tensor,
    rgb: torch.Tensor,
    depth: torch.Tensor,
    bounds: WorkspaceBounds | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten a batch of multi-camera clouds and mark the points that are valid and inside the workspace.

    Args:
        points: ``(B, V, H, W, 3)`` world-frame points.
        rgb: ``(B, V, H, W, 3)`` uint8 (or float in [0, 1]) colours.
        depth: ``(B, V, H, W)`` depth; ``<= 0`` marks invalid pixels.
        bounds: workspace box.

    Returns:
        ``(points (B, N, 3) float32, colors (B, N, 3) float32 in [0, 1], mask (B, N) bool)``, ``N = V*H*W``.
    """
    bounds = bounds or WorkspaceBounds()
    if points.dim() != 5 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, V, H, W, 3), got {tuple(points.shape)}")
    if rgb.shape != points.shape or depth.shape != points.shape[:-1]:
        raise ValueError(
            f"rgb {tuple(rgb.shape)} and depth {tuple(depth.shape)} must match points {tuple(points.shape)}"
        )
    if not torch.isfinite(depth).all() or not torch.isfinite(points).all():
        raise ObservationError("depth or points contain NaN or inf values")
    batch = points.shape[0]
    flat_points = points.reshape(batch, -1, 3).float()
    colors = rgb.reshape(batch, -1, 3).float()
    if rgb.dtype == torch.uint8:
        colors = colors / 255.0
    mask = (depth.reshape(batch, -1) > 0) & bounds.contains(flat_points)
    empty = torch.nonzero(~mask.any(dim=1)).flatten().tolist()
    if empty:
        raise EmptyPointCloudError(
            f"samples {empty} have no valid point inside the workspace {bounds.low}..{bounds.high}"
        )
    return flat_points, colors, mask
