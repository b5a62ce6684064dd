"""Latency and rate of the ROS path with the simulated arm, and the watchdog's reaction time.

    .venv/bin/python benchmarks/ros_latency.py [--checkpoint RUN]    # -> benchmarks/results/ros_latency.json

Starts a real roscore and ``cortico deploy sim-arm`` (four cameras at 64 px, 30 frames/s), then runs the
reactive loop observe -> act -> safety -> publish one control tick for ``--cycles`` cycles, each on an
observation newer than the previous command. Latency is from the arrival of the newest camera frame to
the command's publication. With ``--checkpoint`` the policy is a trained one (its inference time counts);
without, a fixed target isolates the ROS path itself. The watchdog test cuts the cameras during a move and
measures when the arm is held.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a trained policy (default: a fixed target, the ROS path alone)")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--watchdog-trials", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS / "ros_latency.json")
    args = parser.parse_args()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ["ROS_MASTER_URI"] = f"http://127.0.0.1:{port}"
    processes = [subprocess.Popen(["roscore", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                  start_new_session=True)]  # fmt: skip
    try:
        from cortico.deploy.transport import import_rospy

        import_rospy()
        import rosgraph

        while not rosgraph.is_master_online():
            time.sleep(0.2)
        cortico = str(Path(sys.executable).parent / "cortico")
        command = [cortico, "deploy", "sim-arm", "--task", "reach", "--image-size", "64", "--camera-rate", "30"]
        sim = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
        processes.append(sim)
        sim.stdout.readline()
        results = run(args)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(timeout=20)
    from cortico.atomic import write_json_atomic

    write_json_atomic(args.json, results)
    print(json.dumps(results, indent=2))
    return 0


def run(args: argparse.Namespace) -> dict:
    from cortico.deploy.profile import load_profile
    from cortico.deploy.ros_arm import RosArm
    from cortico.deploy.sim_arm import CAMERAS_ENABLED_TOPIC
    from cortico.deploy.transport import Ros1Transport
    from cortico.envs.contract import KeyframeAction

    profile = load_profile("sim_sawyer")
    arm = RosArm(profile, Ros1Transport("cortico_latency"))
    policy = None
    if args.checkpoint:
        from cortico.policies.training import load_policy

        policy = load_policy(args.checkpoint)
    observation = arm.reset(seed=0, instruction="reach the goal")
    image_topics = [c.image for c in profile.cameras.values()]
    latencies, started, last_command = [], time.monotonic(), 0.0
    for _ in range(args.cycles):
        observation = arm.observe(newer_than=last_command)
        frame_arrival = time.monotonic() - min(arm.latest.age(t) for t in image_topics)
        if policy is not None:
            action = policy.act(observation)
        else:
            target = observation.gripper_pose.copy()
            target[1] += 0.05
            action = KeyframeAction(target[:3], target[3:], gripper_open=True)
        arm.step_towards(action, observation)
        last_command = time.monotonic()
        latencies.append(last_command - frame_arrival)
    elapsed = time.monotonic() - started
    latencies_ms = np.array(latencies) * 1000

    reactions, cut_to_hold = [], []
    arm.transport.advertise(CAMERAS_ENABLED_TOPIC, "std_msgs/Bool")
    arm.transport.wait_for_subscribers(CAMERAS_ENABLED_TOPIC, 5.0)
    for trial in range(args.watchdog_trials):
        observation = arm.reset(seed=trial + 1)
        far = KeyframeAction(observation.gripper_pose[:3] + [0.0, 0.3, 0.0], observation.gripper_pose[3:], True)
        mover = threading.Thread(target=arm.execute, args=(far,))
        trips_before = len(arm.watchdog.trips)
        mover.start()
        time.sleep(0.25)
        last_frame = time.monotonic() - arm.latest.age(profile.cameras["front"].image)
        cut = time.monotonic()
        arm.transport.publish(CAMERAS_ENABLED_TOPIC, "std_msgs/Bool", {"data": False})
        mover.join(timeout=30)
        if len(arm.watchdog.trips) > trips_before:
            tripped = arm.watchdog.trips[-1][0]
            reactions.append(tripped - last_frame)
            cut_to_hold.append(tripped - cut)
        arm.transport.publish(CAMERAS_ENABLED_TOPIC, "std_msgs/Bool", {"data": True})
        time.sleep(0.5)
    arm.close()
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "policy": args.checkpoint or "fixed target (ROS path only)",
        "cycles": args.cycles,
        "control_rate_hz": args.cycles / elapsed,
        "observation_to_command_ms": {
            "median": float(np.median(latencies_ms)),
            "p99": float(np.percentile(latencies_ms, 99)),
            "max": float(latencies_ms.max()),
        },  # fmt: skip
        "watchdog_timeout_s": profile.safety.watchdog_timeout,
        "watchdog_trials": args.watchdog_trials,
        "watchdog_trips": len(reactions),
        "watchdog_hold_after_last_frame_ms": [round(1000 * r, 1) for r in reactions],
        "watchdog_hold_after_cut_ms_median": 1000 * statistics.median(cut_to_hold) if cut_to_hold else None,
        "watchdog_hold_after_cut_ms_max": 1000 * max(cut_to_hold) if cut_to_hold else None,
    }


if __name__ == "__main__":
    sys.exit(main())
