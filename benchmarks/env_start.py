"""Seconds to make and reset an embedded environment: taking over a closed renderer's GL context vs. a new one.

A renderer closed in the thread that made it leaves its OpenGL context to the thread's next renderer
(envs/mujoco_renderer.py). An environment made after another closed in the same thread takes that context
over; one made in a fresh thread makes its own, as every environment did before. Both are timed in one run,
alternating task by task.

    .venv/bin/python benchmarks/env_start.py --rounds 2 --json benchmarks/results/env_start.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="mt10")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the suite's tasks")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--json", type=Path, default=RESULTS / "env_start.json")
    return parser.parse_args()


def start_seconds(task: str, image_size: int) -> float:
    """Make an environment with two cameras and reset it (the seconds it took), then close it."""
    from cortico.envs.metaworld_backend import MetaWorldEnv

    started = time.perf_counter()
    env = MetaWorldEnv(task, cameras=["front", "wrist"], image_size=image_size)
    env.reset(seed=0)
    seconds = time.perf_counter() - started
    env.close()
    return seconds


def in_fresh_thread(task: str, image_size: int) -> float:
    """:func:`start_seconds` in a new thread: its renderer makes a GL context of its own."""
    result: list[float] = []
    thread = threading.Thread(target=lambda: result.append(start_seconds(task, image_size)))
    thread.start()
    thread.join()
    return result[0]


def main() -> int:
    args = parse_args()
    from cortico.atomic import write_json_atomic
    from cortico.envs import SUITES
    from cortico.envs.gl_backend import configure_gl_backend

    tasks = list(SUITES[args.suite])
    start_seconds(tasks[0], args.image_size)  # imports, and a closed renderer's context to take over
    taken_over, own = [], []
    for _ in range(args.rounds):
        for task in tasks:
            taken_over.append(start_seconds(task, args.image_size))
            own.append(in_fresh_thread(task, args.image_size))
    results = {
        "what": "seconds to make and reset a two-camera environment (median; closing it is not timed)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "gl_backend": configure_gl_backend(),
        },
        "environments_each": len(taken_over),
        "seconds_context_taken_over": statistics.median(taken_over),
        "seconds_own_context": statistics.median(own),
        "own_over_taken_over": statistics.median(own) / statistics.median(taken_over),
    }
    write_json_atomic(args.json, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
