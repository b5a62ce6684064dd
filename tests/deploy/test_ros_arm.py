"""The whole real-robot path against a real roscore: agent -> safety -> ROS -> simulated arm -> cameras."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cortico.deploy.profile import load_profile
from cortico.deploy.ros_arm import RosArm, StaleObservationError
from cortico.deploy.sim_arm import CAMERAS_ENABLED_TOPIC
from cortico.deploy.transport import Ros1Transport
from cortico.envs.contract import KeyframeAction
from cortico.policies.expert import ExpertKeyframePolicy


@pytest.fixture
def arm(sim_arm, tmp_path):
    """The arm as the agent sees it, connected to a simulated arm that each test starts first."""
    robot = RosArm(load_profile("sim_sawyer"), Ros1Transport(), audit_path=tmp_path / "audit.jsonl", connect_timeout=0)
    yield robot
    robot.close()


def _publish_until_heard(arm: RosArm, topic: str, kind: str, message: dict, check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"nobody reacted to {topic}"
        arm.transport.publish(topic, kind, message)
        time.sleep(0.05)


def test_a_language_command_succeeds_through_ros(sim_arm, arm):
    sim_arm("drawer-close", seed=0)
    policy = ExpertKeyframePolicy("drawer-close", seed=0)
    observation = arm.reset(seed=0, instruction="push the drawer shut")
    assert set(observation.cameras) == {"front", "left_shoulder", "right_shoulder", "wrist"}
    observation.validate()
    success = False
    for _ in range(len(policy.actions) + 2):
        outcome = arm.execute(policy.act(observation))
        observation, success = outcome.observation, outcome.success
        if success:
            break
    assert success, outcome.message
    assert arm.safety.audit_path.read_text().count('"event": "keyframe"') >= 2


def test_the_agent_carries_out_a_command_on_the_arm_through_ros(sim_arm, roscore, tmp_path):
    from cortico.agents.session import AgentSettings, build_agent

    sim_arm("drawer-close", seed=0)
    agent = build_agent(AgentSettings(backend="ros", profile="sim_sawyer", audit=str(tmp_path / "agent.jsonl")))
    try:
        result = agent.run("could you push the drawer shut", seed=0, max_keyframes=10)
        assert result.success, result.message
        assert result.task == "drawer-close" and result.parser == "nearest-instruction"
        # without per-step hooks the arm's observation after every keyframe is remembered
        assert agent.frames == result.keyframes + 1
        recalled = agent.snapshot().episodes()
        assert [(e.label, e.success) for e in recalled] == [("drawer-close", True)]
    finally:
        agent.close()
    assert '"event": "keyframe"' in (tmp_path / "agent.jsonl").read_text()


def test_observations_over_ros_match_the_simulator_geometry(sim_arm, arm):
    """The clouds built from ROS messages and the calibration file land on the simulator's surfaces."""
    sim_arm("reach", seed=2)
    observation = arm.reset(seed=2)
    front = observation.cameras["front"]
    valid = front.depth > 0
    assert valid.mean() > 0.9
    table = front.points[valid]
    assert np.mean(np.abs(table[:, 2]) < 0.01) > 0.2  # the table top is at z = 0
    wrist = observation.cameras["wrist"]
    heights = wrist.points[wrist.depth > 0][:, 2]
    # the wrist camera looks down at the table: through the hand-eye calibration its cloud lies on z = 0
    assert abs(np.median(heights)) < 0.01, f"median height of the wrist cloud {np.median(heights):.3f} m"


def test_watchdog_holds_the_arm_when_the_cameras_go_silent(sim_arm, arm):
    sim_arm("reach", seed=1)
    observation = arm.reset(seed=1)
    arm.transport.advertise(CAMERAS_ENABLED_TOPIC, "std_msgs/Bool")
    assert arm.transport.wait_for_subscribers(CAMERAS_ENABLED_TOPIC, 5.0)
    start = observation.gripper_pose
    far = KeyframeAction(start[:3] + np.array([0.0, 0.3, 0.0]), start[3:], gripper_open=True)
    result = {}
    mover = threading.Thread(target=lambda: result.setdefault("outcome", arm.execute(far)))
    mover.start()
    time.sleep(0.25)
    cut = time.monotonic()
    arm.transport.publish(CAMERAS_ENABLED_TOPIC, "std_msgs/Bool", {"data": False})
    mover.join(timeout=20)
    assert "watchdog" in result["outcome"].message
    tripped_at, reason = arm.watchdog.trips[-1]
    timeout = arm.profile.safety.watchdog_timeout
    assert tripped_at - cut <= timeout + 0.1, f"stopped {tripped_at - cut:.3f} s after the cut ({reason})"
    held = arm.latest.snapshot([arm.profile.ee_pose], 1.0, 1.0)[arm.profile.ee_pose]["pose"]["position"]
    time.sleep(1.0)  # the hand settles onto the hold pose (longer in wall time when the machine is loaded)
    settled = arm.latest.snapshot([arm.profile.ee_pose], 1.0, 1.0)[arm.profile.ee_pose]["pose"]["position"]
    time.sleep(0.3)
    later = arm.latest.snapshot([arm.profile.ee_pose], 1.0, 1.0)[arm.profile.ee_pose]["pose"]["position"]
    assert abs(settled["y"] - held["y"]) < 0.03, "the arm went on towards the target after the stop"
    assert far.position[1] - settled["y"] > 0.05, "the arm reached the target despite the stop"
    assert abs(later["y"] - settled["y"]) < 0.001, "the arm does not stay where it was held"
    with pytest.raises(StaleObservationError, match="image"):
        arm.observe()
    _publish_until_heard(arm, CAMERAS_ENABLED_TOPIC, "std_msgs/Bool", {"data": True},
                         lambda: arm.latest.age(arm.profile.cameras["front"].image) < 0.2)  # fmt: skip
    arm.observe()


def test_emergency_stop_latches_until_reset(sim_arm, arm):
    sim_arm("reach", seed=3)
    observation = arm.reset(seed=3)
    _publish_until_heard(arm, arm.profile.estop, "std_msgs/Bool", {"data": True}, lambda: arm.safety.estopped)
    target = KeyframeAction(observation.gripper_pose[:3] + [0.0, 0.05, 0.0], observation.gripper_pose[3:], True)
    outcome = arm.execute(target)
    assert not outcome.reached and "emergency stop latched" in outcome.message
    arm.transport.publish(arm.profile.estop, "std_msgs/Bool", {"data": False})
    time.sleep(0.2)
    assert arm.safety.estopped, "releasing the topic must not release the latch"
    arm.reset_estop()
    assert arm.execute(target).reached


def test_dry_run_sends_nothing(sim_arm, roscore, tmp_path):
    sim_arm("reach", seed=4)
    arm = RosArm(load_profile("sim_sawyer"), Ros1Transport(), audit_path=tmp_path / "dry.jsonl", dry_run=True,
                 connect_timeout=0)  # fmt: skip
    try:
        observation = arm.reset(seed=4)
        target = KeyframeAction(observation.gripper_pose[:3] + [0.0, 0.1, 0.0], observation.gripper_pose[3:], True)
        outcome = arm.execute(target)
        assert "dry run: would stream" in outcome.message
        time.sleep(0.3)
        moved = arm.observe().gripper_pose[:3] - observation.gripper_pose[:3]
        assert np.linalg.norm(moved) < 0.002, f"the arm moved {moved} in a dry run"  # the sim arm settles first
        assert '"dry_run": true' in (tmp_path / "dry.jsonl").read_text()
    finally:
        arm.close()
