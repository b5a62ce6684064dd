"""Which training recipe suits a CPU budget: keyframe samples or every step, with or without augmentation.

    .venv/bin/python benchmarks/policy_recipe.py --steps 500    # -> benchmarks/results/policy_recipe.json

Trains the RVT policy on the suite's demos once per recipe, with the same steps, batch size and seed, and
compares the offline keyframe errors (``cortico.policies.offline``) on a sample of the training keyframes
and on demos at an unseen seed. ``keyframes`` trains on the observations where the expert starts a keyframe
(what the policy is asked at in closed loop, PerAct/RVT); ``all`` on every stored step before the last
keyframe. Augmentation is RVT's SE(3) scene motion (yaw +-20 deg, translation +-10 cm). Each run resumes
from ``--workdir``; the JSON is rewritten after every recipe.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RECIPES = ("keyframes", "keyframes+augment", "all", "all+augment")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/policy_suite/demos"), help="training demos")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, from {RECIPES}")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-samples", type=int, default=150, help="training keyframes to measure on")
    parser.add_argument("--unseen-seed", type=int, default=7)
    parser.add_argument("--unseen-episodes-per-task", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("runs/policy_recipe"))
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_recipe.json")
    args = parser.parse_args()
    unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    return args


def main() -> int:
    args = parse_args()
    import json

    import numpy as np
    import torch

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.policies.offline import keyframe_errors
    from cortico.policies.training import TrainConfig, load_policy, train_policy

    keyframes = KeyframeDataset(args.data, sample_steps="keyframes")
    unseen_root = args.workdir / f"unseen-seed{args.unseen_seed}"
    tasks = sorted({e.task for e in keyframes.episodes})
    config = CollectionConfig.like(args.data, args.unseen_episodes_per_task, args.unseen_seed)
    collect_into_cache(unseen_root, tasks, config, elsewhere="pass another --workdir", progress=False)
    unseen = KeyframeDataset(unseen_root, sample_steps="keyframes")
    picks = np.random.default_rng(0).choice(len(keyframes), min(args.train_samples, len(keyframes)), replace=False)
    training_sample = torch.utils.data.Subset(keyframes, picks.tolist())
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "policy": "rvt",
        "settings": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "data": str(args.data),
            "unseen_seed": args.unseen_seed,
            "torch_threads": torch.get_num_threads(),
        },  # fmt: skip
        "recipes": {},
    }
    for recipe in args.recipes.split(","):
        sample_steps, _, augment = recipe.partition("+")
        train = TrainConfig(
            policy="rvt", steps=args.steps, batch_size=args.batch_size, sample_steps=sample_steps,
            augment=bool(augment), checkpoint_every=max(args.steps // 2, 1),
        )  # fmt: skip
        run = args.workdir / recipe
        started = time.perf_counter()
        summary = train_policy(args.data, run, train, resume=run.exists())
        policy = load_policy(run)
        results["recipes"][recipe] = {
            "train_seconds": time.perf_counter() - started,
            "final_losses": summary["final_losses"],
            "training_demos": keyframe_errors(policy, training_sample),
            "unseen_demos": keyframe_errors(policy, unseen),
        }
        write_json_atomic(args.json, results)
        row = results["recipes"][recipe]
        print(f"{recipe:>18}: training {row['training_demos']['all']['median_cm']:.1f} cm, "
              f"unseen {row['unseen_demos']['all']['median_cm']:.1f} cm median", flush=True)  # fmt: skip
    print(json.dumps({r: {k: v["all"] for k, v in row.items() if k.endswith("demos")}
                      for r, row in results["recipes"].items()}, indent=2))  # fmt: skip
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
