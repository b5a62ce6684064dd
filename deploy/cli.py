"""Commands of the deploy folder: ``deploy run``, ``sim-arm``, ``calibrate`` and ``sim-calibration``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    deploy = subparsers.add_parser("deploy", help="drive a ROS-connected arm (real or simulated)")
    sub = deploy.add_subparsers(dest="deploy_command", metavar="SUBCOMMAND")
    deploy.set_defaults(handler=lambda args: deploy.print_help() or 2)

    run = sub.add_parser(
        "run",
        help="execute a language command on a ROS arm through the safety layer",
        description="Ask a trained policy (or the simulated arm's scripted expert) for keyframes and stream them to "
        "the arm through the safety layer. Start with --dry-run on a real robot.",
    )
    run.add_argument("instruction", metavar="COMMAND", help='the instruction, e.g. "open the drawer"')
    run.add_argument(
        "--profile", required=True, help="robot profile YAML (or a shipped name: franka, sawyer, sim_sawyer)"
    )
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="trained policy (run directory or pretrained_model)")
    source.add_argument("--expert", metavar="TASK", help="simulated arm only: replay the scripted expert of TASK")
    run.add_argument("--transport", default="ros1", choices=("ros1", "rosbridge"))
    run.add_argument("--host", default="localhost", help="rosbridge host")
    run.add_argument("--port", type=int, default=9090, help="rosbridge port")
    run.add_argument("--dry-run", action="store_true", help="decide and log every command, send none")
    run.add_argument("--max-keyframes", type=int, default=15)
    run.add_argument("--seed", type=int, default=0, help="simulated arm only: the scene's seed")
    run.add_argument("--audit", default="runs/deploy/audit.jsonl", help="safety audit log (JSON lines)")
    run.set_defaults(handler=_run)

    sim = sub.add_parser("sim-arm", help="serve the embedded simulator as a ROS arm (needs a running roscore)")
    sim.add_argument("--profile", default="sim_sawyer")
    sim.add_argument("--task", required=True, help="the simulated task")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--image-size", type=int, default=64)
    sim.add_argument("--camera-rate", type=float, default=20.0, help="camera frames per second")
    sim.add_argument("--duration", type=float, help="stop after this many seconds (default: until interrupted)")
    sim.set_defaults(handler=_sim_arm)

    calibrate = sub.add_parser(
        "calibrate",
        help="estimate a camera's extrinsics from point correspondences",
        description="Give the same points (e.g. gripper positions) as seen by the camera and as reported by the arm "
        "(JSON lists of [x, y, z], at least 3, not collinear); the camera's mount is added to the calibration file.",
    )
    calibrate.add_argument("--camera", required=True, help="camera name in the robot profile")
    calibrate.add_argument("--camera-points", required=True, help="JSON file: points in the camera frame")
    calibrate.add_argument(
        "--robot-points", required=True, help="JSON file: the same points in the base (or gripper) frame"
    )
    calibrate.add_argument(
        "--parent", default="base", choices=("base", "ee"), help="base (static camera) or ee (wrist)"
    )
    calibrate.add_argument("--out", required=True, help="calibration YAML to create or update")
    calibrate.add_argument("--base-frame", default="base")
    calibrate.set_defaults(handler=_calibrate)

    sim_calibration = sub.add_parser("sim-calibration", help="write the simulated arm's exact camera calibration")
    sim_calibration.add_argument("--profile", default="sim_sawyer")
    sim_calibration.add_argument("--out", required=True)
    sim_calibration.set_defaults(handler=_sim_calibration)


def _run(args: argparse.Namespace) -> int:
    from cortico.deploy.profile import load_profile
    from cortico.deploy.ros_arm import RosArm
    from cortico.deploy.transport import TRANSPORTS
    from cortico.perception.text_encoder import validate_instruction

    instruction = validate_instruction(args.instruction)
    profile = load_profile(args.profile)
    if args.expert and not profile.simulated:
        raise ValueError("--expert replays the simulator's scripted expert; it only drives the simulated arm")
    transport_class = TRANSPORTS.get(args.transport)
    transport = transport_class(host=args.host, port=args.port) if args.transport == "rosbridge" else transport_class()
    arm = RosArm(profile, transport, audit_path=args.audit, dry_run=args.dry_run)
    if args.expert:
        from cortico.policies.expert import ExpertKeyframePolicy

        policy = ExpertKeyframePolicy(args.expert, args.seed)
    else:
        from cortico.policies.training import load_policy

        policy = load_policy(args.checkpoint)
    try:
        observation = arm.reset(seed=args.seed, instruction=instruction)
        for keyframe in range(1, args.max_keyframes + 1):
            arm.policy_heartbeat()
            action = policy.act(observation, instruction)
            outcome = arm.execute(action)
            observation = outcome.observation
            print(f"keyframe {keyframe}: {outcome.message} (error {outcome.position_error:.3f} m)")
            if outcome.success:
                print("task succeeded")
                break
            if arm.safety.estopped:
                print("emergency stop latched: stopping")
                return 1
    finally:
        arm.close()
    print(f"audit log: {args.audit}")
    return 0


def _sim_arm(args: argparse.Namespace) -> int:
    from cortico.deploy.profile import load_profile
    from cortico.deploy.sim_arm import SimArmNode
    from cortico.deploy.transport import Ros1Transport

    profile = load_profile(args.profile)
    if not profile.simulated:
        raise ValueError(f"profile {profile.name!r} is not a simulated arm (simulated: true)")
    node = SimArmNode(
        profile, Ros1Transport("cortico_sim_arm"), args.task, image_size=args.image_size, camera_rate=args.camera_rate
    )
    node._request_reset(args.seed)
    print(
        f"simulated {profile.name} serving {args.task} (seed {args.seed}) on the topics of {args.profile}", flush=True
    )
    try:
        node.run(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        node.close()
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import numpy as np

    from cortico.deploy.calibration import (
        CalibrationError,
        CameraMount,
        estimate_rigid_transform,
        load_calibration,
        save_calibration,
    )

    try:
        camera_points = np.asarray(json.loads(Path(args.camera_points).read_text()), dtype=float)
        robot_points = np.asarray(json.loads(Path(args.robot_points).read_text()), dtype=float)
    except (OSError, json.JSONDecodeError, ValueError) as error:
        raise CalibrationError(f"cannot read the point files: {error}") from error
    matrix, residual = estimate_rigid_transform(camera_points, robot_points)
    mounts = load_calibration(args.out) if Path(args.out).exists() else {}
    mounts[args.camera] = CameraMount(args.parent, matrix)
    save_calibration(args.out, mounts, args.base_frame)
    print(
        f"{args.camera}: rms residual {1000 * residual:.1f} mm over {len(camera_points)} points; written to {args.out}"
    )
    return 0


def _sim_calibration(args: argparse.Namespace) -> int:
    from cortico.deploy.profile import load_profile
    from cortico.deploy.sim_arm import write_simulated_calibration

    write_simulated_calibration(load_profile(args.profile), args.out)
    print(f"wrote {args.out}")
    return 0
