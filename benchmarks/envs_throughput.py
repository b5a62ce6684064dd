"""Throughput of the embedded simulator: physics steps, multi-camera rendering, expert-demo collection,
and how often replaying the extracted keyframes through the keyframe controller solves the task again.

    .venv/bin/python benchmarks/envs_throughput.py --one-core                 # the figures in BENCHMARKS.md
    .venv/bin/python benchmarks/envs_throughput.py --suite mt10 --episodes-per-task 5 --json out.json

Writes ``benchmarks/results/envs_throughput.json`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="mt10")
    parser.add_argument("--episodes-per-task", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--cameras", default="front,left_shoulder,right_shoulder,wrist")
    parser.add_argument("--render-frames", type=int, default=200, help="observations timed for the render rate")
    parser.add_argument("--replay-seeds", type=int, default=10, help="expert episodes replayed per task")
    parser.add_argument("--one-core", action="store_true", help="pin to CPU 0 and give Mesa one thread")
    parser.add_argument("--json", type=Path, default=RESULTS / "envs_throughput.json")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.one_core:
        os.environ["LP_NUM_THREADS"] = "1"  # Mesa's llvmpipe rasteriser threads (read when GL starts)
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    import numpy as np

    from cortico.atomic import write_json_atomic
    from cortico.envs.cameras import resolve_cameras
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.expert_demos import EXPERT_KEYFRAMES, ScriptedExpert, record_expert_episode
    from cortico.envs.keyframes import KeyframeConfig
    from cortico.envs.metaworld_backend import MetaWorldEnv
    from cortico.envs.task_catalog import suite_tasks

    cameras = resolve_cameras(args.cameras)
    tasks = list(suite_tasks(args.suite))
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores_used": len(os.sched_getaffinity(0)),
            "mujoco_gl": os.environ.get("MUJOCO_GL"),
        },
        "software": software_versions(),
        "settings": {"suite": args.suite, "cameras": list(cameras), "image_size": args.image_size},
    }

    # 1. physics: expert-driven low-level steps without rendering
    env = MetaWorldEnv("pick-place", cameras=cameras, image_size=args.image_size, max_episode_steps=10**6)
    env.reset(seed=0)
    expert = ScriptedExpert(env.spec.metaworld_name)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3.0:
        env.step_delta(expert.act(env.state, env.tcp_position))
        steps += 1
    results["sim_steps_per_second"] = steps / (time.perf_counter() - started)

    # 2. rendering: full observations (every camera, RGB + depth + point cloud)
    env.observe()  # warm-up
    started = time.perf_counter()
    for _ in range(args.render_frames):
        env.observe()
    elapsed = time.perf_counter() - started
    results["observations_per_second"] = args.render_frames / elapsed
    results["ms_per_observation"] = 1000 * elapsed / args.render_frames
    env.close()

    # 3. expert-demo collection for the suite, storing every step (the default) or only keyframes
    for store in ("all", "keyframes"):
        with tempfile.TemporaryDirectory() as tmp:
            config = CollectionConfig(
                episodes_per_task=args.episodes_per_task, cameras=cameras, image_size=args.image_size, store=store
            )
            summary = collect_demos(Path(tmp) / "demos", tasks, config, progress=False)
            results["collection" if store == "all" else "collection_keyframes_only"] = {
                "episodes": sum(summary.collected.values()),
                "expert_failures": sum(summary.failures.values()),
                "seconds": summary.seconds,
                "episodes_per_minute": summary.episodes_per_minute,
            }

    # 4. keyframe oracle: replay each expert episode's keyframes through the keyframe controller, with the
    #    keyframes cortico extracts and, side by side, with the pure PerAct/RVT heuristic
    heuristics = {"cortico": EXPERT_KEYFRAMES, "peract_rvt": KeyframeConfig(settle_gripper=False)}
    replay: dict[str, dict[str, dict[str, float]]] = {name: {} for name in heuristics}
    for task in tasks:
        env = MetaWorldEnv(task, cameras=cameras[:1], image_size=32)
        for name, keyframe_config in heuristics.items():
            solved, keyframes, episodes = 0, [], 0
            for seed in range(args.replay_seeds):
                record = record_expert_episode(env, seed, store="keyframes", keyframe_config=keyframe_config)
                if not record.success:
                    continue
                episodes += 1
                keyframes.append(len(record.keyframes))
                env.reset(seed=seed)
                for action in record.keyframe_actions():
                    outcome = env.execute(action)
                    if outcome.success:
                        break
                solved += outcome.success
            replay[name][task] = {
                "episodes": episodes,
                "success": solved / max(episodes, 1),
                "mean_keyframes": float(np.mean(keyframes)),
            }
        env.close()
    results["keyframe_replay"] = replay
    results["keyframe_replay_mean_success"] = {
        name: float(np.mean([r["success"] for r in per_task.values()])) for name, per_task in replay.items()
    }

    write_json_atomic(args.json, results)
    print(json.dumps({k: v for k, v in results.items() if k not in ("software", "keyframe_replay")}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
