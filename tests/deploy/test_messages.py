"""Message conversion (shared by ROS 1 and rosbridge), robot profiles and calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cortico.deploy.calibration import (
    CalibrationError,
    estimate_rigid_transform,
    load_calibration,
    pose_to_matrix,
)
from cortico.deploy.messages import (
    MessageError,
    camera_info_to_dict,
    depth_in_metres,
    image_from_dict,
    image_to_dict,
    intrinsics_from_camera_info,
    joint_state_to_dict,
    joints_from_dict,
    pose_from_dict,
    pose_to_dict,
    trajectory_to_dict,
)
from cortico.deploy.profile import PROFILES_DIR, ProfileError, load_profile

ENCODINGS = [("rgb8", (6, 5, 3), np.uint8), ("bgr8", (6, 5, 3), np.uint8), ("32FC1", (6, 5), np.float32),
             ("16UC1", (6, 5), np.uint16)]  # fmt: skip


@pytest.mark.parametrize(("encoding", "shape", "dtype"), ENCODINGS)
def test_images_round_trip_through_json(encoding, shape, dtype):
    array = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
    message = json.loads(json.dumps(image_to_dict(array, encoding, 12.5, "cam")))  # what rosbridge puts on the wire
    back = image_from_dict(message)
    np.testing.assert_array_equal(back, array[..., ::-1] if encoding == "bgr8" else array)
    with pytest.raises(MessageError, match="expects"):
        image_from_dict(message, expected="mono8" if encoding != "mono8" else "rgb8")
    message["data"] = message["data"][: len(message["data"]) // 2]
    with pytest.raises(MessageError):
        image_from_dict(message)


def test_depth_units_and_invalid_values():
    millimetres = np.array([[1000, 0], [2500, 65535]], dtype=np.uint16)
    np.testing.assert_allclose(depth_in_metres(millimetres, "16UC1"), [[1.0, 0.0], [2.5, 65.535]])
    metres = np.array([[np.nan, -1.0], [np.inf, 0.7]], dtype=np.float32)
    np.testing.assert_allclose(depth_in_metres(metres, "32FC1"), [[0, 0], [0, 0.7]])


def test_camera_info_pose_joints_and_trajectory():
    k = np.array([[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]])
    back, height, width = intrinsics_from_camera_info(camera_info_to_dict(k, 64, 64, 1.0, "cam"))
    np.testing.assert_array_equal(back, k)
    assert (height, width) == (64, 64)
    with pytest.raises(MessageError, match="positive focal"):
        intrinsics_from_camera_info({"K": [0.0] * 9, "height": 1, "width": 1})
    pose = np.array([0.1, 0.2, 0.3, 0, 0, 0.7071068, 0.7071068])
    message = pose_to_dict(pose, 3.25, "world")
    np.testing.assert_allclose(pose_from_dict(message, "world"), pose)
    assert message["header"]["stamp"] == {"secs": 3, "nsecs": 250_000_000}
    with pytest.raises(MessageError, match="frame"):
        pose_from_dict(message, "base")
    message["pose"]["position"]["x"] = float("nan")
    with pytest.raises(MessageError, match="NaN"):
        pose_from_dict(message)
    joints = joint_state_to_dict(["b", "a"], np.array([1.0, 2.0]), np.array([0.1, 0.2]), 0.0)
    positions, velocities = joints_from_dict(joints, ["a", "b"])
    np.testing.assert_allclose(positions, [2.0, 1.0])
    with pytest.raises(MessageError, match="lacks joints"):
        joints_from_dict(joints, ["c"])
    trajectory = trajectory_to_dict(["a"], np.array([0.5]), 1.5, 0.0)
    assert trajectory["points"][0]["time_from_start"] == {"secs": 1, "nsecs": 500_000_000}


def test_every_message_type_round_trips_through_rospy():
    """The native transport's rospy messages and the rosbridge dictionaries are the same data."""
    from cortico.deploy.messages import dict_to_message, message_to_dict
    from cortico.deploy.transport import RosUnavailableError, _message_class, import_rospy

    try:
        import_rospy()
    except RosUnavailableError:
        pytest.skip("ROS 1 python packages are not installed")
    samples = {
        "sensor_msgs/Image": image_to_dict(np.arange(24, dtype=np.uint8).reshape(2, 4, 3), "rgb8", 1.5, "cam"),
        "sensor_msgs/CameraInfo": camera_info_to_dict(np.diag([50.0, 50.0, 1.0]), 4, 4, 2.0, "cam"),
        "geometry_msgs/PoseStamped": pose_to_dict(np.array([1.0, 2, 3, 0, 0, 0, 1]), 3.0, "world"),
        "sensor_msgs/JointState": joint_state_to_dict(["j1", "j2"], np.array([0.1, 0.2]), np.zeros(2), 4.0),
        "trajectory_msgs/JointTrajectory": trajectory_to_dict(["j1"], np.array([0.3]), 2.0, 5.0),
        "std_msgs/Bool": {"data": True},
        "std_msgs/Float64": {"data": 0.08},
        "std_msgs/Int64": {"data": 42},
    }
    for kind, data in samples.items():
        back = message_to_dict(dict_to_message(_message_class(kind), data))
        assert back == data, kind


def test_shipped_profiles_load_and_bad_ones_are_named():
    names = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
    assert names == ["franka", "sawyer", "sim_sawyer"]
    for name in names:
        profile = load_profile(name)
        assert profile.cameras and len(profile.joints) == 7
    assert load_profile("sim_sawyer").simulated
    with pytest.raises(ProfileError, match="shipped profiles"):
        load_profile("ur5")


def test_profile_errors(tmp_path):
    text = (PROFILES_DIR / "sim_sawyer.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text.replace("  ee_pose: /cortico/sim/ee_pose", ""))
    with pytest.raises(ProfileError, match="missing 'topics.ee_pose'"):
        load_profile(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(text.replace("on_violation: clamp", "on_violation: ignore"))
    with pytest.raises(ProfileError, match="clamp"):
        load_profile(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text(
        text.replace("workspace_low: [-0.45, 0.40, 0.0]", "workspace_low: [0.5, 0.40, 0.0]")
    )
    with pytest.raises(ProfileError, match="low < high"):
        load_profile(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("name: [unclosed")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(tmp_path / "d.yaml")


def test_extrinsics_from_point_correspondences():
    rng = np.random.default_rng(0)
    truth = pose_to_matrix(
        np.array([0.5, -0.2, 0.9, *np.array([0.2, 0.5, -0.3, 0.7]) / np.linalg.norm([0.2, 0.5, -0.3, 0.7])])
    )
    camera = rng.uniform(-0.3, 0.3, (8, 3)) + [0, 0, 1.0]
    base = camera @ truth[:3, :3].T + truth[:3, 3] + rng.normal(0, 0.001, (8, 3))
    matrix, residual = estimate_rigid_transform(camera, base)
    assert np.allclose(matrix, truth, atol=0.01) and residual < 0.003
    with pytest.raises(CalibrationError, match="at least 3"):
        estimate_rigid_transform(camera[:2], base[:2])
    line = np.outer(np.arange(5), [1.0, 0, 0])
    with pytest.raises(CalibrationError, match="collinear"):
        estimate_rigid_transform(line, line)


def test_shipped_simulator_calibration_matches_the_simulator():
    from cortico.deploy.sim_arm import simulated_camera_mounts
    from cortico.envs.metaworld_backend import MetaWorldEnv

    profile = load_profile("sim_sawyer")
    shipped = load_calibration(profile.calibration)
    env = MetaWorldEnv("drawer-open", cameras=profile.camera_names, image_size=32)
    env.reset(seed=7)
    current = simulated_camera_mounts(env)
    env.close()
    for name, mount in current.items():
        assert shipped[name].parent == mount.parent
        # static cameras are fixed exactly; the wrist camera keeps a world orientation while the hand wobbles
        # by a fraction of a degree between scenes, so its mount relative to the hand varies that much
        tolerance = 1e-6 if mount.parent == "base" else 0.01
        np.testing.assert_allclose(shipped[name].matrix, mount.matrix, atol=tolerance)


def test_calibration_file_errors(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "cameras:\n  front: {parent: base, matrix: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]]}\n"
    )
    with pytest.raises(CalibrationError, match="proper rotation"):
        load_calibration(tmp_path / "c.yaml")
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibration(tmp_path / "missing.yaml")


def test_rosbridge_says_when_no_server_answers():
    """Only the connection is exercised: no rosbridge_server can be installed on this machine."""
    from cortico.deploy.transport import RosbridgeTransport

    with pytest.raises(ConnectionError, match="no rosbridge server answers at ws://127.0.0.1:9"):
        RosbridgeTransport("127.0.0.1", 9, timeout=1.0)
