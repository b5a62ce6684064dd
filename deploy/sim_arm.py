"""The embedded simulator served as a ROS node: a simulated arm behind real ROS topics.

It publishes what a real arm and its cameras would (joint states, the gripper pose, RGB, depth and camera
info per camera) on the topics of a robot profile, tracks the pose targets and gripper commands it
receives in real time, and answers to a few simulation-only topics: ``/cortico/sim/reset`` (std_msgs/Int64
seed), ``/cortico/sim/success`` (std_msgs/Bool, published) and ``/cortico/sim/cameras_enabled``
(std_msgs/Bool, to cut the cameras in fault tests). So the whole real-robot path (agent -> safety -> ROS ->
arm -> cameras -> agent) runs on one machine against a real roscore.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from cortico.deploy.calibration import CameraMount, pose_to_matrix, save_calibration
from cortico.deploy.messages import (
    camera_info_to_dict,
    image_to_dict,
    joint_state_to_dict,
    pose_from_dict,
    pose_to_dict,
)
from cortico.deploy.profile import RobotProfile
from cortico.deploy.ros_arm import SIM_RESET_TOPIC, SIM_SUCCESS_TOPIC
from cortico.deploy.transport import Transport
from cortico.envs.metaworld_backend import MetaWorldEnv

logger = logging.getLogger(__name__)

CAMERAS_ENABLED_TOPIC = "/cortico/sim/cameras_enabled"


class SimArmNode:
    """Meta-World's arm and cameras behind a robot profile's topics.

    Args:
        profile: a profile whose camera names are simulator cameras (e.g. ``sim_sawyer``).
        transport: the ROS connection (usually :class:`~cortico.deploy.transport.Ros1Transport`).
        task: the simulated task.
        image_size: camera resolution.
        camera_rate: camera frames per second (physics runs at Meta-World's 80 Hz).
    """

    def __init__(
        self, profile: RobotProfile, transport: Transport, task: str, *, image_size: int = 64, camera_rate: float = 20.0
    ) -> None:
        self.profile = profile
        self.transport = transport
        self.env = MetaWorldEnv(task, cameras=profile.camera_names, image_size=image_size, max_episode_steps=10**9)
        self.camera_rate = camera_rate
        self._lock = threading.Lock()
        self._target: np.ndarray | None = None
        self._grab = -1.0
        self._reset_seed: int | None = 0
        self._cameras_enabled = True
        self._stop = threading.Event()
        transport.subscribe(profile.pose_command, "geometry_msgs/PoseStamped", self._on_pose)
        gripper_type = "std_msgs/Bool" if profile.gripper_type == "binary" else "std_msgs/Float64"
        transport.subscribe(profile.gripper_command, gripper_type, self._on_gripper)
        transport.subscribe(SIM_RESET_TOPIC, "std_msgs/Int64", lambda m: self._request_reset(int(m["data"])))
        transport.subscribe(CAMERAS_ENABLED_TOPIC, "std_msgs/Bool", self._on_cameras_enabled)

    # --------------------------------------------------------------------------------------- commands
    def _on_pose(self, message: dict) -> None:
        try:
            pose = pose_from_dict(message, self.profile.base_frame)
        except ValueError as error:
            logger.warning("ignoring pose command: %s", error)
            return
        with self._lock:
            self._target = pose[:3]

    def _on_gripper(self, message: dict) -> None:
        value = message["data"]
        open_ = (
            bool(value) if self.profile.gripper_type == "binary" else float(value) > self.profile.gripper_open_width / 2
        )
        with self._lock:
            self._grab = -1.0 if open_ else 1.0

    def _request_reset(self, seed: int) -> None:
        with self._lock:
            self._reset_seed = seed

    def _on_cameras_enabled(self, message: dict) -> None:
        self._cameras_enabled = bool(message["data"])
        logger.info("cameras %s", "enabled" if self._cameras_enabled else "CUT")

    # ------------------------------------------------------------------------------------------- loop
    def run(self, duration: float | None = None) -> None:
        """Step physics in real time and publish until :meth:`stop` (or ``duration`` seconds)."""
        period = self.env.control_dt
        camera_period = 1.0 / self.camera_rate
        started = next_tick = time.monotonic()
        next_camera = started
        while not self._stop.is_set() and (duration is None or time.monotonic() - started < duration):
            with self._lock:
                seed, self._reset_seed = self._reset_seed, None
                target, grab = self._target, self._grab
            if seed is not None:
                self.env.reset(seed=seed)
                self._settle()
                with self._lock:
                    self._target, self._grab = None, -1.0
                target, grab = None, -1.0
                next_camera = time.monotonic()
            self._step(target, grab)
            stamp = self.transport.now()
            self._publish_state(stamp)
            now = time.monotonic()
            if now >= next_camera:
                if self._cameras_enabled:
                    self._publish_cameras(stamp)
                next_camera = now + camera_period
            next_tick += period
            time.sleep(max(0.0, next_tick - time.monotonic()))
            if time.monotonic() - next_tick > 0.25:  # fell far behind (slow machine): do not try to catch up
                next_tick = time.monotonic()

    def stop(self) -> None:
        """End :meth:`run`."""
        self._stop.set()

    def _settle(self, *, tolerance: float = 5e-5, still_steps: int = 5, max_steps: int = 240) -> None:
        """Let the hand come to rest after a reset, as a real arm finishes homing before it reports ready.

        Meta-World's hand swings by up to ~6 mm for about half a second after a reset; without this, the first
        observations of an episode would see the arm move on its own. Runs faster than real time.
        """
        still, previous = 0, self.env.tcp_position.copy()
        for _ in range(max_steps):
            self.env.step_delta(np.array([0.0, 0.0, 0.0, -1.0]))
            position = self.env.tcp_position.copy()
            still = still + 1 if np.linalg.norm(position - previous) < tolerance else 0
            previous = position
            if still >= still_steps:
                return
        logger.warning("the hand did not come to rest within %d steps of the reset", max_steps)

    def _step(self, target: np.ndarray | None, grab: float) -> None:
        """One physics step tracking the target with Meta-World's delta action (at most 1 cm per step).

        Like the keyframe servo, it drives the mocap body to where the hand's resting offset puts the tool on
        the target; closing the loop on the lagging hand instead makes it oscillate about a held pose.
        """
        delta = np.zeros(3)
        if target is not None:
            low, high = self.env.reachable_bounds
            mocap_goal = np.clip(target, low, high) - self.env.tcp_offset
            delta = np.clip((mocap_goal - self.env.mocap_position()) / self.env.action_scale, -1, 1)
        self.env.step_delta(np.append(delta, grab))

    def _publish_state(self, stamp: float) -> None:
        p = self.profile
        proprio = self.env.proprioception()
        joints = joint_state_to_dict(list(p.joints), proprio["joint_positions"], proprio["joint_velocities"], stamp)
        self.transport.publish(p.joint_states, "sensor_msgs/JointState", joints)
        self.transport.publish(
            p.ee_pose, "geometry_msgs/PoseStamped", pose_to_dict(proprio["gripper_pose"], stamp, p.base_frame)
        )
        self.transport.publish(SIM_SUCCESS_TOPIC, "std_msgs/Bool", {"data": bool(self.env.success)})

    def _publish_cameras(self, stamp: float) -> None:
        observation = self.env.observe()
        for name, topics in self.profile.cameras.items():
            frame = observation.cameras[name]
            height, width = frame.depth.shape
            self.transport.publish(topics.image, "sensor_msgs/Image", image_to_dict(frame.rgb, "rgb8", stamp, name))
            self.transport.publish(topics.depth, "sensor_msgs/Image", image_to_dict(frame.depth, "32FC1", stamp, name))
            self.transport.publish(topics.info, "sensor_msgs/CameraInfo",
                                   camera_info_to_dict(frame.intrinsics, height, width, stamp, name))  # fmt: skip

    def close(self) -> None:
        """Stop and release the simulator."""
        self.stop()
        self.env.close()


def simulated_camera_mounts(env: MetaWorldEnv) -> dict[str, CameraMount]:
    """The simulator's exact camera mounts: static cameras on the base, the wrist camera on the gripper."""
    observation = env.observe()
    gripper = pose_to_matrix(observation.gripper_pose)
    return {
        name: CameraMount("ee", np.linalg.inv(gripper) @ frame.extrinsics)
        if name == "wrist"
        else CameraMount("base", frame.extrinsics)
        for name, frame in observation.cameras.items()
    }


def write_simulated_calibration(profile: RobotProfile, path: str | Path, task: str = "reach") -> None:
    """Write the calibration YAML of the simulated arm's cameras (the Meta-World rig is the same for every task)."""
    env = MetaWorldEnv(task, cameras=profile.camera_names, image_size=32)
    try:
        env.reset(seed=0)
        save_calibration(path, simulated_camera_mounts(env), profile.base_frame)
    finally:
        env.close()
