"""Pinhole camera geometry in the contract's convention (OpenCV axes, camera-to-world extrinsics).

Pure numpy; used by the simulator, the dataset loader, perception and the real-arm calibration.
"""

from __future__ import annotations

import numpy as np


def pixel_rays(intrinsics: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return ``(H, W, 3)`` camera-frame rays ``K^-1 (u, v, 1)`` with unit z for every pixel centre."""
    k_inv = np.linalg.inv(np.asarray(intrinsics, dtype=np.float64))
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    homogeneous = np.stack([u, v, np.ones_like(u)], axis=-1)
    return homogeneous @ k_inv.T


def depth_to_points(
    depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, rays: np.ndarray | None = None
) -> np.ndarray:
    """Back-project a z-depth image to world-frame points.

    Args:
        depth: ``(H, W)`` metres along the optical axis; 0 marks invalid pixels.
        intrinsics: ``(3, 3)`` pinhole matrix.
        extrinsics: ``(4, 4)`` camera-to-world transform.
        rays: optional precomputed :func:`pixel_rays` for this camera (saves time per frame).

    Returns:
        ``(H, W, 3)`` float32 world points, 0 where ``depth`` is 0.
    """
    height, width = depth.shape
    if rays is None:
        rays = pixel_rays(intrinsics, height, width)
    cam_points = rays * depth[..., None]
    rotation, translation = extrinsics[:3, :3], extrinsics[:3, 3]
    world = cam_points @ rotation.T + translation
    world[depth <= 0] = 0.0
    return world.astype(np.float32)


def project_points(points: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into a camera.

    Args:
        points: ``(..., 3)`` world-frame points.
        intrinsics: ``(3, 3)`` pinhole matrix.
        extrinsics: ``(4, 4)`` camera-to-world transform.

    Returns:
        ``(uv, z)``: ``(..., 2)`` pixel coordinates (column, row; pixel centres at integers) and ``(...)``
        depth along the optical axis (negative behind the camera).
    """
    world_to_cam = np.linalg.inv(extrinsics)
    cam = np.asarray(points, dtype=np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam[..., :2] / z[..., None]) @ intrinsics[:2, :2].T + intrinsics[:2, 2]
    return uv, z


def look_at_extrinsics(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world transform of a camera at ``eye`` looking at ``target`` (OpenCV axes)."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: 'up' is parallel to the viewing direction; choose another up vector")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = np.stack([right, down, forward], axis=1)
    extrinsics[:3, 3] = eye
    return extrinsics
