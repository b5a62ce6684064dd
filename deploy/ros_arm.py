"""A ROS-connected arm behind the cortico environment contract (``reset``, ``observe``, ``execute``).

Observations are assembled from the newest message of every topic of the robot profile, refused when any
is older than the profile allows; keyframes go through the safety layer and are streamed as pose targets at
the control rate; a watchdog holds the arm when observations stop arriving or the policy stalls, and an
emergency-stop topic latches until an operator resets it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cortico.deploy.calibration import CameraMount, load_calibration, pose_to_matrix
from cortico.deploy.messages import (
    MessageError,
    depth_in_metres,
    image_from_dict,
    intrinsics_from_camera_info,
    joints_from_dict,
    pose_from_dict,
    pose_to_dict,
)
from cortico.deploy.profile import RobotProfile
from cortico.deploy.safety import SafetyLayer
from cortico.deploy.transport import Transport
from cortico.envs.camera_geometry import depth_to_points
from cortico.envs.contract import CameraFrame, KeyframeAction, KeyframeOutcome, Observation

logger = logging.getLogger(__name__)

SIM_RESET_TOPIC = "/cortico/sim/reset"
SIM_SUCCESS_TOPIC = "/cortico/sim/success"


class StaleObservationError(RuntimeError):
    """Some topic has produced nothing recent enough; the message names the topics and their ages."""


class LatestMessages:
    """The newest message of each topic with its arrival time (monotonic seconds), thread-safe."""

    def __init__(self) -> None:
        self._messages: dict[str, tuple[float, dict[str, Any]]] = {}
        self._changed = threading.Condition()

    def update(self, topic: str, message: dict[str, Any]) -> None:
        """Store a message (called by transport callbacks)."""
        with self._changed:
            self._messages[topic] = (time.monotonic(), message)
            self._changed.notify_all()

    def age(self, topic: str) -> float:
        """Seconds since the last message on ``topic`` (inf when none came)."""
        entry = self._messages.get(topic)
        return time.monotonic() - entry[0] if entry else float("inf")

    def snapshot(self, topics: list[str], max_age: float, timeout: float, newer_than: float = 0.0) -> dict[str, dict]:
        """The newest message of every topic, waiting up to ``timeout`` for all to be fresh enough.

        A message is fresh when it arrived less than ``max_age`` seconds ago and after ``newer_than``
        (monotonic time). Raises :class:`StaleObservationError` naming the stale topics otherwise.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                arrived = {t: self._messages[t][0] for t in topics if t in self._messages}
                stale = [t for t in topics if t not in arrived or now - arrived[t] > max_age or arrived[t] < newer_than]
                if not stale:
                    return {t: self._messages[t][1] for t in topics}
                if now >= deadline:
                    ages = {t: round(self.age(t), 3) for t in stale}
                    raise StaleObservationError(f"no fresh message within {timeout} s on {ages} (ages in s)")
                self._changed.wait(deadline - now)


class Watchdog:
    """Calls ``on_trip(reason)`` once when ``check()`` reports a problem; re-arms when it clears.

    Args:
        check: returns a reason string while something is wrong, else None.
        on_trip: called in the watchdog thread (must be quick: publish a stop).
        period: seconds between checks.
    """

    def __init__(self, check: Callable[[], str | None], on_trip: Callable[[str], None], period: float = 0.005) -> None:
        self._check, self._on_trip, self._period = check, on_trip, period
        self.tripped: str | None = None
        self.trips: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cortico-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            reason = self._check()
            if reason and not self.tripped:
                self.tripped = reason
                self.trips.append((time.monotonic(), reason))
                try:
                    self._on_trip(reason)
                except Exception:  # noqa: BLE001 - a watchdog must keep watching
                    logger.exception("watchdog stop action failed")
            elif not reason and self.tripped:
                logger.info("watchdog: cleared (%s)", self.tripped)
                self.tripped = None

    def close(self) -> None:
        """Stop watching."""
        self._stop.set()
        self._thread.join(timeout=1.0)


class RosArm:
    """A real (or simulated) arm reached through ROS, implementing the environment contract.

    Args:
        profile: the robot profile.
        transport: a connected transport (ROS 1 or rosbridge).
        audit_path: the safety layer's audit log (JSON lines).
        dry_run: decide and log every command, send none.
        observation_timeout: seconds to wait for a complete, fresh observation.
        connect_timeout: seconds to wait for the robot to listen on the command topics.
    """

    def __init__(
        self,
        profile: RobotProfile,
        transport: Transport,
        *,
        audit_path: str | Path | None = None,
        dry_run: bool = False,
        observation_timeout: float = 2.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.profile = profile
        self.transport = transport
        self.task = profile.name
        self.camera_names = profile.camera_names
        self.safety = SafetyLayer(profile.safety, audit_path, dry_run)
        self.dry_run = dry_run
        self.observation_timeout = observation_timeout
        self.mounts: dict[str, CameraMount] = load_calibration(profile.calibration) if profile.calibration else {}
        missing = [c for c in self.camera_names if c not in self.mounts]
        if missing:
            raise MessageError(f"calibration {profile.calibration or '(none)'} lacks cameras {missing}")
        self.latest = LatestMessages()
        self._instruction = ""
        self._started = time.monotonic()
        self._gripper_open = True
        self._success = False
        self._moving = False
        self._heartbeat = time.monotonic()
        self.image_size = 0
        self.stop_events: list[tuple[float, str]] = []
        self._command_lock = threading.RLock()  # a hold is never followed by a waypoint checked before it
        self._subscribe()
        self._advertise(connect_timeout)
        self.watchdog = Watchdog(self._watch, self._hold)

    # -------------------------------------------------------------------------------------- plumbing
    def _camera_topics(self) -> list[str]:
        return [t for c in self.profile.cameras.values() for t in (c.image, c.depth, c.info)]

    def _subscribe(self) -> None:
        p = self.profile
        types = {p.joint_states: "sensor_msgs/JointState", p.ee_pose: "geometry_msgs/PoseStamped"}
        for camera in p.cameras.values():
            types.update(
                {
                    camera.image: "sensor_msgs/Image",
                    camera.depth: "sensor_msgs/Image",
                    camera.info: "sensor_msgs/CameraInfo",
                }
            )
        for topic, kind in types.items():
            self.transport.subscribe(topic, kind, lambda message, topic=topic: self.latest.update(topic, message))
        self.transport.subscribe(p.estop, "std_msgs/Bool", self._on_estop)
        if p.simulated:
            self.transport.subscribe(SIM_SUCCESS_TOPIC, "std_msgs/Bool", self._on_success)

    def _advertise(self, timeout: float) -> None:
        """Announce the command topics and wait (bounded) until the robot listens: ROS drops early messages."""
        p = self.profile
        gripper_type = "std_msgs/Bool" if p.gripper_type == "binary" else "std_msgs/Float64"
        commands = {p.pose_command: "geometry_msgs/PoseStamped", p.gripper_command: gripper_type}
        if p.simulated:
            commands[SIM_RESET_TOPIC] = "std_msgs/Int64"
        for topic, kind in commands.items():
            self.transport.advertise(topic, kind)
        deadline = time.monotonic() + timeout
        for topic in commands:
            if not self.transport.wait_for_subscribers(topic, max(0.0, deadline - time.monotonic())):
                logger.warning("nothing listens on %s yet; commands sent there may be lost", topic)

    def _on_estop(self, message: dict[str, Any]) -> None:
        if message.get("data"):
            self.safety.trigger_estop("emergency-stop topic")
            self._hold("emergency stop")

    def _on_success(self, message: dict[str, Any]) -> None:
        self._success = self._success or bool(message.get("data"))

    def _watch(self) -> str | None:
        """Why the arm must be held now, or None."""
        if not self._moving:
            return None
        max_age = self.profile.safety.watchdog_timeout
        for topic in [*self._camera_topics(), self.profile.ee_pose]:
            age = self.latest.age(topic)
            if age > max_age:
                return f"{topic} silent for {age:.3f} s (limit {max_age} s)"
        return None

    def policy_heartbeat(self) -> None:
        """The agent calls this around each decision; a decision longer than ``policy_timeout`` holds the arm."""
        self._heartbeat = time.monotonic()

    def _hold(self, reason: str) -> None:
        """Command the arm to stay where it is (the stop of a pose-controlled arm)."""
        self.stop_events.append((time.monotonic(), reason))
        logger.warning("holding the arm: %s", reason)
        if self.dry_run or self.latest.age(self.profile.ee_pose) == float("inf"):
            return
        with self._command_lock:
            pose = pose_from_dict(self.latest.snapshot([self.profile.ee_pose], float("inf"), 0.0)[self.profile.ee_pose])
            self.transport.publish(self.profile.pose_command, "geometry_msgs/PoseStamped",
                                   pose_to_dict(pose, self.transport.now(), self.profile.base_frame))  # fmt: skip

    # ---------------------------------------------------------------------------------- observation
    def observe(self, newer_than: float = 0.0) -> Observation:
        """A complete, fresh observation in the contract's terms (raises when a topic is stale)."""
        p = self.profile
        max_age = max(p.safety.watchdog_timeout, 0.5)
        topics = [p.joint_states, p.ee_pose, *self._camera_topics()]
        messages = self.latest.snapshot(topics, max_age, self.observation_timeout, newer_than)
        ee_pose = pose_from_dict(messages[p.ee_pose], p.base_frame)
        ee_matrix = pose_to_matrix(ee_pose)
        frames = {}
        for name, topics_of in p.cameras.items():
            rgb = image_from_dict(messages[topics_of.image])
            if rgb.ndim != 3:
                raise MessageError(f"camera {name}: {topics_of.image} is not a colour image ({rgb.shape})")
            depth = depth_in_metres(
                image_from_dict(messages[topics_of.depth]), topics_of.depth_encoding, topics_of.depth_scale
            )
            intrinsics, height, width = intrinsics_from_camera_info(messages[topics_of.info])
            if rgb.shape[:2] != (height, width) or depth.shape != (height, width):
                raise MessageError(
                    f"camera {name}: image {rgb.shape[:2]}, depth {depth.shape} and camera info "
                    f"({height}, {width}) disagree"
                )
            extrinsics = self.mounts[name].camera_to_base(ee_matrix)
            frames[name] = CameraFrame(
                rgb, depth, depth_to_points(depth, intrinsics, extrinsics), intrinsics, extrinsics
            )
            self.image_size = width
        positions, velocities = joints_from_dict(messages[p.joint_states], list(p.joints))
        return Observation(
            cameras=frames,
            gripper_pose=ee_pose,
            gripper_open=1.0 if self._gripper_open else 0.0,
            joint_positions=positions,
            joint_velocities=velocities,
            time=time.monotonic() - self._started,
            instruction=self._instruction,
            task="",
        )

    def reset(self, *, seed: int | None = None, instruction: str | None = None) -> Observation:
        """Start an episode: a real arm stays where it is; the simulated arm re-seeds its scene."""
        self._instruction = instruction or ""
        self._success = False
        self._started = time.monotonic()
        requested = time.monotonic()
        if self.profile.simulated and not self.dry_run:
            self.transport.wait_for_subscribers(SIM_RESET_TOPIC, 2.0)
            self.transport.publish(SIM_RESET_TOPIC, "std_msgs/Int64", {"data": int(seed or 0)})
            time.sleep(0.2)  # let the reset land before the first fresh observation
            requested = time.monotonic()
        self._gripper_open = True
        return self.observe(newer_than=requested)

    # ------------------------------------------------------------------------------------- execution
    def execute(self, action: KeyframeAction | np.ndarray) -> KeyframeOutcome:
        """Check the keyframe, stream it at the speed limits, then set the gripper; hold on any fault."""
        p = self.profile
        self.policy_heartbeat()  # the policy has just decided
        requested = action.to_array() if isinstance(action, KeyframeAction) else np.asarray(action, dtype=float)
        start = self.observe()
        decision = self.safety.check(requested, start.gripper_pose, self._gripper_open)
        if decision.refused or self.dry_run:
            reason = "; ".join(decision.reasons) or "dry run: nothing sent"
            if self.dry_run and not decision.refused:
                reason = (
                    f"dry run: would stream to {np.round(decision.target, 3).tolist()} in {decision.duration:.2f} s"
                )
            return KeyframeOutcome(
                start, self._success, False, 0, float(np.linalg.norm(requested[:3] - start.gripper_pose[:3])), reason
            )
        self._moving = True
        self.watchdog.tripped = None
        period = 1.0 / p.control_rate
        message = "reached"
        try:
            next_tick = time.monotonic()
            for waypoint in decision.waypoints(start.gripper_pose, p.control_rate):
                with self._command_lock:
                    if (fault := self._fault()) is not None:
                        message = fault
                        break
                    self.transport.publish(
                        p.pose_command,
                        "geometry_msgs/PoseStamped",
                        pose_to_dict(waypoint, self.transport.now(), p.base_frame),
                    )
                next_tick += period
                time.sleep(max(0.0, next_tick - time.monotonic()))
            if message == "reached":
                message = self._settle(decision.target)
            if message in ("reached", "stopped short of the target") and decision.gripper_open != self._gripper_open:
                self._command_gripper(decision.gripper_open)
        finally:
            self._moving = False
        observation = self.observe()
        error = float(np.linalg.norm(observation.gripper_pose[:3] - decision.target[:3]))
        if decision.reasons:
            message = f"{message} ({'; '.join(decision.reasons)})"
        return KeyframeOutcome(observation, self._success, error < p.position_tolerance, 0, error, message)

    def step_towards(self, action: KeyframeAction | np.ndarray, observation: Observation) -> bool:
        """Reactive control: check the keyframe and send only the first control tick towards it.

        For policies run at the control rate (observe -> act -> step). Returns False when nothing was sent
        (refused, dry run, or a fault).
        """
        self.policy_heartbeat()
        requested = action.to_array() if isinstance(action, KeyframeAction) else np.asarray(action, dtype=float)
        decision = self.safety.check(requested, observation.gripper_pose, self._gripper_open)
        if decision.refused or self.dry_run:
            return False
        first = decision.waypoints(observation.gripper_pose, self.profile.control_rate)[0]
        with self._command_lock:
            if self._fault() is not None:
                return False
            self.transport.publish(self.profile.pose_command, "geometry_msgs/PoseStamped",
                                   pose_to_dict(first, self.transport.now(), self.profile.base_frame))  # fmt: skip
        return True

    def _fault(self) -> str | None:
        if self.safety.estopped:
            return "emergency stop"
        if self.watchdog.tripped:
            return f"watchdog: {self.watchdog.tripped}"
        if time.monotonic() - self._heartbeat > self.profile.safety.policy_timeout:
            self._hold("policy stalled")
            return "policy stalled"
        return None

    def _settle(self, target: np.ndarray) -> str:
        """Wait until the gripper is within tolerance of the target (or stops moving, or times out)."""
        p = self.profile
        deadline = time.monotonic() + p.keyframe_timeout
        last, still_since = None, time.monotonic()
        while time.monotonic() < deadline:
            if (fault := self._fault()) is not None:
                return fault
            pose = pose_from_dict(self.latest.snapshot([p.ee_pose], float("inf"), 1.0)[p.ee_pose])
            if np.linalg.norm(pose[:3] - target[:3]) < p.position_tolerance:
                return "reached"
            if last is not None and np.linalg.norm(pose[:3] - last) > 1e-4:
                still_since = time.monotonic()
            elif time.monotonic() - still_since > 0.5:
                return "stopped short of the target"
            last = pose[:3]
            time.sleep(1.0 / p.control_rate)
        return f"not reached within {p.keyframe_timeout} s"

    def _command_gripper(self, open_: bool) -> None:
        p = self.profile
        if p.gripper_type == "binary":
            self.transport.publish(p.gripper_command, "std_msgs/Bool", {"data": bool(open_)})
        else:
            self.transport.publish(
                p.gripper_command, "std_msgs/Float64", {"data": p.gripper_open_width if open_ else 0.0}
            )
        self._gripper_open = open_
        time.sleep(0.4)  # fingers take a moment; a real driver would report when it is done

    def reset_estop(self) -> None:
        """Release a latched emergency stop (operator action)."""
        self.safety.reset_estop()

    def close(self) -> None:
        """Stop the watchdog and disconnect the topics."""
        self.watchdog.close()
        self.transport.close()
