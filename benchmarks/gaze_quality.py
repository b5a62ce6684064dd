"""Gaze model quality on held-out MT10 episodes, beside the centre-of-image baseline.

    .venv/bin/python benchmarks/gaze_quality.py        # -> benchmarks/results/gaze_quality.json

Collects MT10 expert demos for training (seed base 0) and a separate test set (seed base 1: different
object and goal placements), trains the gaze model with and without instruction conditioning under the
same budget, and evaluates both on the test episodes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-episodes-per-task", type=int, default=8)
    parser.add_argument("--test-episodes-per-task", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--data", type=Path, help="reuse this folder for the datasets (kept afterwards)")
    parser.add_argument("--json", type=Path, default=RESULTS / "gaze_quality.json")
    args = parser.parse_args()

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.envs.task_catalog import SUITES
    from cortico.perception.gaze import GazeConfig
    from cortico.perception.gaze_training import GazeTrainConfig, evaluate_checkpoint, train_gaze

    workdir = args.data or Path(tempfile.mkdtemp(prefix="gaze-bench-"))
    tasks = list(SUITES["mt10"])
    datasets = {}
    for name, count, seed in (("train", args.train_episodes_per_task, 0), ("test", args.test_episodes_per_task, 1)):
        root = workdir / name
        config = CollectionConfig(
            episodes_per_task=count, cameras=("front", "wrist"), image_size=args.image_size, seed=seed
        )
        collect_into_cache(root, tasks, config, elsewhere="pass another --data")
        datasets[name] = root

    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "suite": "mt10",
        "train_episodes_per_task": args.train_episodes_per_task,
        "test_episodes_per_task": args.test_episodes_per_task,
        "image_size": args.image_size,
        "steps": args.steps,
    }
    for variant, text_dim in (("with_instruction", 384), ("without_instruction", 0)):
        run = workdir / f"run_{variant}"
        config = GazeTrainConfig(steps=args.steps, model=GazeConfig(image_size=args.image_size, text_dim=text_dim))
        metrics = train_gaze(datasets["train"], run, config, resume=run.exists())
        results[variant] = {
            "test": evaluate_checkpoint(run / "model", datasets["test"]),
            "validation_split": metrics["validation"],
            "train_seconds": metrics["seconds"],
        }
    write_json_atomic(args.json, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
