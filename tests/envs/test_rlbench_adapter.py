"""The RLBench adapter, tested around the simulator (CoppeliaSim cannot be installed here)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cortico.envs.camera_geometry import depth_to_points, look_at_extrinsics, project_points
from cortico.envs.contract import KeyframeAction
from cortico.envs.rlbench_backend import (
    BackendUnavailableError,
    RLBenchEnv,
    observation_from_rlbench,
    rlbench_action,
    to_opencv_calibration,
)


def _negative_focal_camera():
    """A camera described the CoppeliaSim way (negative focal lengths, x and y axes flipped)."""
    intrinsics = np.array([[-90.0, 0, 31.5], [0, -90.0, 31.5], [0, 0, 1]])
    opencv = look_at_extrinsics(np.array([0.8, -0.4, 1.2]), np.array([0.0, 0.2, 0.75]))
    flipped = opencv.copy()
    flipped[:3, 0] *= -1
    flipped[:3, 1] *= -1
    return intrinsics, flipped, opencv


def test_negative_focal_lengths_become_opencv():
    intrinsics, flipped, opencv = _negative_focal_camera()
    fixed_k, fixed_t = to_opencv_calibration(intrinsics, flipped)
    assert fixed_k[0, 0] > 0 and fixed_k[1, 1] > 0
    np.testing.assert_allclose(fixed_t, opencv, atol=1e-12)
    world = np.random.default_rng(1).uniform([-0.3, -0.1, 0.7], [0.3, 0.5, 1.0], size=(50, 3))
    uv_theirs = (intrinsics @ np.linalg.inv(flipped)[:3] @ np.c_[world, np.ones(50)].T).T
    uv_theirs = uv_theirs[:, :2] / uv_theirs[:, 2:]
    uv_ours, _ = project_points(world, fixed_k, fixed_t)
    np.testing.assert_allclose(uv_ours, uv_theirs, atol=1e-9)
    with pytest.raises(ValueError, match="one image axis"):
        to_opencv_calibration(np.diag([-90.0, 90.0, 1.0]), np.eye(4))


def test_observation_conversion_keeps_the_contract():
    intrinsics, flipped, opencv = _negative_focal_camera()
    depth = np.full((64, 64), 1.1, dtype=np.float32)
    depth[0, :5] = 0.0
    points = depth_to_points(depth, *to_opencv_calibration(intrinsics, flipped))
    camera = {
        "front_rgb": np.zeros((64, 64, 3), np.uint8),
        "front_depth": depth,
        "front_point_cloud": points.astype(np.float64),
    }
    obs = SimpleNamespace(
        **camera,
        misc={"front_camera_intrinsics": intrinsics, "front_camera_extrinsics": flipped},
        gripper_pose=np.array([0.2, 0.0, 1.0, 0, 0, 0, 1.0]),
        gripper_open=1.0,
        joint_positions=np.zeros(7),
        joint_velocities=np.zeros(7),
        gripper_joint_positions=np.array([0.04, 0.04]),
    )
    converted = observation_from_rlbench(obs, ("front",), "open the drawer", "open_drawer", 0.5)
    converted.validate()
    frame = converted.cameras["front"]
    np.testing.assert_allclose(frame.extrinsics, opencv, atol=1e-12)
    assert frame.points.dtype == np.float32 and np.all(frame.points[0, :5] == 0)
    assert converted.gripper_open == 1.0 and converted.instruction == "open the drawer"
    with pytest.raises(ValueError, match="disabled"):
        observation_from_rlbench(
            SimpleNamespace(wrist_rgb=None, wrist_depth=None, wrist_point_cloud=None, misc={}),
            ("wrist",),
            "x",
            "t",
            0.0,
        )


def test_action_layout_matches_move_arm_then_gripper():
    action = KeyframeAction(
        np.array([0.3, 0.1, 0.9]), np.array([0, 1.0, 0, 0]), gripper_open=False, ignore_collision=True
    )
    np.testing.assert_allclose(rlbench_action(action), [0.3, 0.1, 0.9, 0, 1, 0, 0, 0, 1])


def test_missing_rlbench_says_how_to_install():
    try:
        import rlbench  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("RLBench is installed here")
    with pytest.raises(BackendUnavailableError, match="CoppeliaSim"):
        RLBenchEnv("open_drawer")
