"""Camera calibration for real observations: camera-to-base (static cameras) or camera-to-gripper (wrist).

Extrinsics come from a YAML file; :func:`estimate_rigid_transform` computes one from point correspondences
(for instance a few gripper positions reported by the arm and seen by the camera), so real observations
fill the same contract as the simulator's (camera-to-world in the robot's base frame, OpenCV axes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

PARENTS = ("base", "ee")


class CalibrationError(ValueError):
    """A calibration file or a correspondence set is unusable."""


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits: ``matrix`` is camera-to-``parent`` (``"base"`` or ``"ee"``), OpenCV axes."""

    parent: str
    matrix: np.ndarray

    def camera_to_base(self, ee_pose_matrix: np.ndarray | None = None) -> np.ndarray:
        """Camera-to-base transform (the wrist camera needs the current gripper pose as a 4x4 matrix)."""
        if self.parent == "base":
            return self.matrix
        if ee_pose_matrix is None:
            raise CalibrationError("a camera mounted on the gripper needs the gripper pose")
        return ee_pose_matrix @ self.matrix


def _check_rigid(matrix: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise CalibrationError(f"camera {name}: the matrix must be 4x4 finite numbers")
    rotation = matrix[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
        raise CalibrationError(f"camera {name}: the rotation part is not a proper rotation")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise CalibrationError(f"camera {name}: the last row must be [0, 0, 0, 1]")
    return matrix


def load_calibration(path: str | Path) -> dict[str, CameraMount]:
    """Read ``cameras: {name: {parent: base|ee, matrix: 4x4}}`` from a YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        cameras = raw["cameras"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise CalibrationError(f"cannot read camera calibration {path}: {error}") from error
    mounts = {}
    for name, spec in cameras.items():
        parent = spec.get("parent", "base")
        if parent not in PARENTS:
            raise CalibrationError(f"camera {name}: parent must be one of {PARENTS}, got {parent!r}")
        mounts[name] = CameraMount(parent, _check_rigid(spec.get("matrix"), name))
    return mounts


def save_calibration(path: str | Path, mounts: dict[str, CameraMount], base_frame: str) -> None:
    """Write a calibration YAML file."""
    from cortico.atomic import write_bytes_atomic

    payload = {
        "base_frame": base_frame,
        "cameras": {n: {"parent": m.parent, "matrix": np.round(m.matrix, 9).tolist()} for n, m in mounts.items()},
    }
    write_bytes_atomic(path, yaml.safe_dump(payload, sort_keys=False).encode())


def estimate_rigid_transform(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """The rotation + translation that best maps ``source`` points onto ``target`` (Kabsch / Umeyama).

    Args:
        source: ``(N, 3)`` points, e.g. gripper positions measured in the camera frame.
        target: ``(N, 3)`` the same points in the base frame (from the arm's kinematics).

    Returns:
        ``(matrix (4, 4) source-to-target, rms residual in metres)``.
    """
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3:
        raise CalibrationError(f"need two (N, 3) point sets of the same size, got {source.shape} and {target.shape}")
    if len(source) < 3:
        raise CalibrationError(f"need at least 3 correspondences, got {len(source)}")
    source_mean, target_mean = source.mean(0), target.mean(0)
    covariance = (target - target_mean).T @ (source - source_mean)
    if np.linalg.matrix_rank(covariance) < 2:
        raise CalibrationError("the points are collinear; move the gripper to positions that span a plane or volume")
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = target_mean - rotation @ source_mean
    residual = float(np.sqrt(np.mean(np.sum((source @ rotation.T + matrix[:3, 3] - target) ** 2, axis=1))))
    return matrix, residual


def pose_to_matrix(pose: np.ndarray) -> np.ndarray:
    """``(7,)`` xyz + quaternion xyzw to a 4x4 matrix."""
    from scipy.spatial.transform import Rotation

    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat(pose[3:7]).as_matrix()
    matrix[:3, 3] = pose[:3]
    return matrix
