"""Time to load one training batch of keyframe samples: from the HDF5 episode files vs the memory cache.

    .venv/bin/python benchmarks/sample_loading.py --data runs/policy_suite20/demos
    # -> benchmarks/results/sample_loading.json

Uses the policy suite's demos (collect them with ``benchmarks/policy_suite.py`` or ``cortico collect``).
The training loop loads its batch in the main process, so this time adds to every optimisation step. The
cache is filled first (a run fills it within its first few hundred steps), then both datasets draw the
same kind of uniform batches, alternating in rounds so that the machine's load falls on both alike; each
round's figure is the mean of ``--batches`` batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a demo dataset directory")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batches", type=int, default=20, help="batches per round")
    parser.add_argument("--cache-mb", type=float, default=2048.0)
    parser.add_argument("--json", type=Path, default=RESULTS / "sample_loading.json")
    args = parser.parse_args()

    import torch

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.policies.training import TrainConfig, draw_batch

    torch.set_num_threads(1)
    datasets = {
        "hdf5": KeyframeDataset(args.data, sample_steps="keyframes"),
        "cache": KeyframeDataset(args.data, sample_steps="keyframes", cache_mb=args.cache_mb),
    }
    started = time.perf_counter()
    for index in range(len(datasets["cache"])):
        datasets["cache"][index]
    fill_seconds = time.perf_counter() - started
    train = TrainConfig(batch_size=args.batch_size)
    generator = torch.Generator().manual_seed(0)
    rounds: dict[str, list[float]] = {name: [] for name in datasets}
    for number in range(args.rounds):
        for name, dataset in datasets.items():
            began = time.perf_counter()
            for _ in range(args.batches):
                [dataset[i] for i in draw_batch(dataset, train, generator)]
            rounds[name].append(1000 * (time.perf_counter() - began) / args.batches)
        print(f"round {number + 1}: " + ", ".join(f"{n} {v[-1]:.1f} ms" for n, v in rounds.items()), flush=True)
    cache = datasets["cache"]
    results = {
        "command": "python benchmarks/sample_loading.py " + " ".join(sys.argv[1:]),
        "software": software_versions(),
        "samples": len(cache),
        "cached_samples": cache.cached_samples,
        "cache_fill_seconds": fill_seconds,
        "batch_size": args.batch_size,
        "batch_ms": {name: statistics.median(values) for name, values in rounds.items()},
        "batch_ms_rounds": rounds,
    }
    write_json_atomic(args.json, results)
    print({name: round(value, 1) for name, value in results["batch_ms"].items()}, f"-> {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
