"""The policy target's margin, read from evaluated runs: one policy minus another, paired, per training seed and pooled.

    .venv/bin/python benchmarks/policy_margins.py runs/policy_rev5/cortical:runs/policy_rev5/rvt \
        runs/policy_rev5/cortical_seed1:runs/policy_rev5/rvt_seed1 --json benchmarks/results/policy_margins_rev5.json

Each argument pairs two training runs of the same suite run (``FIRST:SECOND``, e.g. the cortical policy and
RVT trained with the same seed). Nothing is evaluated: the episodes ``benchmarks/policy_seed_sets.py`` (or
``policy_suite.py``) recorded in ``RUN/eval*/episodes.jsonl`` are read, and the pairs share only the episodes
(task, seed) both runs finished. The pooled figure pairs every pair's episodes at once, so the margin over
several training seeds comes with one interval instead of being averaged by hand.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", help="FIRST:SECOND training runs (FIRST minus SECOND is reported)")
    parser.add_argument(
        "--seeds", default="0,1,2", help="evaluation seed bases read, as policy_seed_sets.py names them"
    )
    parser.add_argument("--tag", default="", help="the policy_seed_sets.py --tag of the episodes to read")
    parser.add_argument(
        "--first-tag", help="the first runs' tag where it differs (an inference setting only they take; default --tag)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    pairs = []
    for text in args.pairs:
        first, colon, second = text.partition(":")
        if not colon or not first or not second:
            parser.error(f"each pair is FIRST:SECOND (two run folders), got {text!r}")
        pairs.append((Path(first), Path(second)))
    args.pair_list = pairs
    args.seed_list = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    args.first_tag = args.tag if args.first_tag is None else args.first_tag
    return args


def recorded_episodes(run: Path, seeds: list[int], tag: str) -> dict:
    """A run's finished episodes over its evaluation seed bases, keyed by (task, seed)."""
    from policy_seed_sets import evaluation_folder  # this folder is on the path

    from cortico.policies.evaluation import load_finished_episodes

    if not run.is_dir():
        raise SystemExit(f"error: {run} is not a training run folder")
    folders = [evaluation_folder(run, seed, tag) for seed in seeds]
    episodes: dict = {}
    for folder in folders:
        episodes.update(load_finished_episodes(folder / "episodes.jsonl"))
    if not episodes:
        raise SystemExit(
            f"error: {run} has no evaluated episodes in {', '.join(f.name for f in folders)}: "
            "run policy_seed_sets.py first"
        )
    return episodes


def success_rate(episodes: dict) -> float:
    """Share of the episodes that succeeded."""
    return sum(e.success for e in episodes.values()) / len(episodes)


def main() -> int:
    args = parse_args()
    from cortico.policies.evaluation import paired_difference

    rows, pooled_first, pooled_second = [], {}, {}
    for index, (first, second) in enumerate(args.pair_list):
        a = recorded_episodes(first, args.seed_list, args.first_tag)
        b = recorded_episodes(second, args.seed_list, args.tag)
        shared = set(a) & set(b)
        a, b = {k: a[k] for k in shared}, {k: b[k] for k in shared}
        difference = paired_difference(a, b)
        rows.append({"first": str(first), "second": str(second), "first_success": success_rate(a),
                     "second_success": success_rate(b), **difference})  # fmt: skip
        pooled_first.update({(index, *key): episode for key, episode in a.items()})
        pooled_second.update({(index, *key): episode for key, episode in b.items()})
    pooled = {"first_success": success_rate(pooled_first), "second_success": success_rate(pooled_second),
              **paired_difference(pooled_first, pooled_second)}  # fmt: skip

    print("| first | second | first success | second success | first - second (95%) | won / lost | episodes |")
    print("|---|---|---|---|---|---|---|")
    for row in [*rows, {"first": "pooled", "second": "", **pooled}]:
        low, high = row["ci95"]
        print(
            f"| {row['first']} | {row['second']} | {row['first_success']:.3f} | {row['second_success']:.3f} | "
            f"{100 * row['difference']:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}) | "
            f"{row['only_first_succeeded']} / {row['only_second_succeeded']} | {row['episodes']} |"
        )
    if args.json:
        from cortico.atomic import write_json_atomic

        results = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": date.today().isoformat(),
            "seeds": args.seed_list,
            "tag": args.tag,
            "first_tag": args.first_tag,
            "pairs": rows,
            "pooled": pooled,
        }
        write_json_atomic(args.json, results)
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
