"""Ray scaling on this machine: collection, evaluation and training with 1 and 2 workers, and Ray's start-up.

    .venv/bin/python benchmarks/ray_scaling.py                      # the figures in BENCHMARKS.md

``--workers 1`` runs in the command's own process (what a user gets without Ray); 2 workers are Ray actors
(collection, evaluation) or Ray Train workers (training). Each pair is measured back to back in one run
and reported as a ratio. Mesa is held to one rasteriser thread per simulator so that one worker uses one
core. Writes ``benchmarks/results/ray_scaling.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="drawer-close,button-press-topdown,reach,door-open")
    parser.add_argument("--episodes-per-task", type=int, default=4)
    parser.add_argument("--eval-episodes-per-task", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--store", default="all", choices=("all", "keyframes"),
        help="frames rendered and stored per episode (all: what policy training collects)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=RESULTS / "ray_scaling.json")
    return parser.parse_args()


def timed(function, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def main() -> int:
    args = parse_args()
    os.environ["LP_NUM_THREADS"] = "1"

    import torch

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos
    from cortico.envs.dataset.index import software_versions
    from cortico.policies.distributed import train_policy_distributed
    from cortico.policies.evaluation import evaluate_policy
    from cortico.policies.training import TrainConfig, load_policy, train_policy
    from cortico.ray_runtime import RayOptions, ray_session

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    cameras = ("front", "left_shoulder", "right_shoulder", "wrist")
    config = CollectionConfig(episodes_per_task=args.episodes_per_task, cameras=cameras,
                              image_size=args.image_size, store=args.store)  # fmt: skip
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "software": software_versions(),
        "tasks": tasks,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def ray_start_stop() -> None:
            with ray_session():
                pass

        _, startup = timed(ray_start_stop)
        results["ray_startup_seconds"] = startup
        print(f"Ray local start + shutdown: {startup:.1f} s")

        one, t1 = timed(collect_demos, work / "one", tasks, config, progress=False)
        two, t2 = timed(collect_demos, work / "two", tasks, config, progress=False, workers=2, ray=RayOptions())
        episodes = sum(one.collected.values())
        results["collection"] = {
            "episodes": episodes,
            "seconds": {"1": t1, "2": t2},
            "episodes_per_minute": {"1": 60 * episodes / t1, "2": 60 * episodes / t2},
            "speedup": t1 / t2,
            "speedup_without_ray_startup": t1 / max(t2 - startup, 1e-9),
            "workers": two.workers,
        }
        print(f"collection: {episodes} episodes, 1 worker {t1:.1f} s, 2 workers {t2:.1f} s -> x{t1 / t2:.2f}")

        train = TrainConfig(policy="cnn", steps=args.train_steps, batch_size=args.batch_size, warmup_steps=5,
                            checkpoint_every=args.train_steps, log_every=args.train_steps)  # fmt: skip
        torch.set_num_threads(2)
        single, s1 = timed(train_policy, work / "one", work / "train1", train, progress=False)
        double, s2 = timed(train_policy_distributed, work / "one", work / "train2", train, workers=2, ray=RayOptions())
        samples = args.train_steps * args.batch_size
        results["training"] = {
            "policy": "cnn", "steps": args.train_steps, "global_batch": args.batch_size,
            "seconds_with_startup": {"1": s1, "2": s2},
            "samples_per_second": {"1": samples / single["seconds"], "2": double["samples_per_second"]},
            "speedup": double["samples_per_second"] / (samples / single["seconds"]),
            "note": "1 worker = this process with torch's 2 threads; 2 workers = Ray Train, 1 thread each, gloo",
        }  # fmt: skip
        print(f"training: 1 process {samples / single['seconds']:.1f} samples/s, "
              f"2 Ray Train workers {double['samples_per_second']:.1f} samples/s")  # fmt: skip

        torch.set_num_threads(1)
        policy = load_policy(work / "train1").eval()
        n = args.eval_episodes_per_task
        here, e1 = timed(evaluate_policy, policy, tasks, n, keyframe_budget=5, progress=False)
        there, e2 = timed(evaluate_policy, policy, tasks, n, keyframe_budget=5, progress=False, workers=2,
                          checkpoint=work / "train1", ray=RayOptions())  # fmt: skip
        same = [(e.task, e.seed, e.success, e.keyframes) for e in here.episodes] == [
            (e.task, e.seed, e.success, e.keyframes) for e in there.episodes
        ]
        count = len(here.episodes)
        results["evaluation"] = {
            "episodes": count,
            "seconds": {"1": e1, "2": e2},
            "episodes_per_minute": {"1": 60 * count / e1, "2": 60 * count / e2},
            "speedup": e1 / e2,
            "same_results": same,
            "workers": there.workers,
        }
        print(f"evaluation: {count} episodes, 1 worker {e1:.1f} s, 2 workers {e2:.1f} s -> x{e1 / e2:.2f}; "
              f"same per-episode results: {same}")  # fmt: skip
    write_json_atomic(args.json, results)
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
