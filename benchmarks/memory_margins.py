"""The memory target's figures, read from memory-bench JSONs: cortico's margin over a baseline on backward questions.

    .venv/bin/python benchmarks/memory_margins.py benchmarks/results/memory_qa_k_ago_anchor.json \
        benchmarks/results/memory_qa_k_ago_anchor_seed1.json benchmarks/results/memory_qa_k_ago_anchor_seed2.json

For each result (one ``cortico memory bench --json`` file, usually one seed) it prints the oracle reader's
backward accuracy (the ceiling, per reader), the margin at each budget, and the margin over every backward
question asked when the stream was at least ``--min-history`` budgets long (the history bins pooled over the
budgets, as the issue's "streams 20x the budget" is read); then the same pooled over all the files given, so
a setting is compared over seeds in one table rather than by hand, with the seeds' spread (mean, standard
deviation and a 95% t-interval of the per-seed margins). ``--part heldout`` reads the figures of the streams
chained from the benchmark's second demo collection (``cortico memory bench --heldout-streams N``) instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="memory-bench JSON files (e.g. one per seed)")
    parser.add_argument("--policy", default="cortico", help="the memory whose margin is read")
    parser.add_argument("--baseline", default="uniform", help="the memory it is compared with")
    parser.add_argument("--min-history", type=float, default=20.0, help="pool the history bins from this many budgets")
    parser.add_argument(
        "--part", choices=("test", "heldout"), default="test",
        help="the benchmark's own test streams, or the streams of its second demo collection (--heldout-streams)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def bin_start(label: str) -> float:
    """The lower edge of a history bin's label ("20-40x" -> 20, ">=80x" -> 80)."""
    return float(label.removeprefix(">=").split("-")[0].rstrip("x"))


def long_history(pooled: dict[str, dict[str, Any]], min_history: float) -> dict[str, Any]:
    """Questions and correct answers over the history bins starting at ``min_history`` budgets or later."""
    return summed([cell for label, cell in pooled.items() if bin_start(label) >= min_history])


def summed(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Questions and correct answers added over ``cells``, and their accuracy (None without questions)."""
    questions = sum(c["questions"] for c in cells)
    correct = sum(c["correct"] for c in cells)
    return {"questions": questions, "correct": correct, "accuracy": correct / questions if questions else None}


def margins(results: dict[str, Any], policy: str, baseline: str, min_history: float) -> dict[str, Any]:
    """One result's backward margins: per budget (tokens), and pooled over budgets at long histories."""
    rows = results["policies"]
    per_budget = {}
    for row in rows.values():
        if row["policy"] != policy:
            continue
        other = rows.get(f"{baseline}@{row['budget_frames']}")
        if other is None:
            continue
        mine, theirs = row["accuracy"]["mode:backward"], other["accuracy"]["mode:backward"]
        per_budget[str(row["budget_tokens"])] = {"policy": mine, "baseline": theirs, "margin": mine - theirs}
    pooled = results["backward_by_history_pooled"]
    missing = [name for name in (policy, baseline) if name not in pooled]
    if missing:
        raise SystemExit(f"no memory {missing} in this result; it has {sorted(pooled)}")
    mine, theirs = long_history(pooled[policy], min_history), long_history(pooled[baseline], min_history)
    return {
        "seed": results["config"]["seed"],
        "oracle_backward": results["oracle"]["mode:backward"],
        "oracle_backward_per_reader": results.get("oracle_per_reader", {}).get("backward"),
        "per_budget": per_budget,
        "long_history": {"policy": mine, "baseline": theirs, "margin": _difference(mine, theirs)},
    }


def _difference(mine: dict[str, Any], theirs: dict[str, Any]) -> float | None:
    if mine["accuracy"] is None or theirs["accuracy"] is None:
        return None
    return mine["accuracy"] - theirs["accuracy"]


def pooled_over(files: list[dict[str, Any]]) -> dict[str, Any]:
    """The long-history counts summed over several results (seeds), and their margin."""
    total = {side: summed([f["long_history"][side] for f in files]) for side in ("policy", "baseline")}
    total["margin"] = _difference(total["policy"], total["baseline"])
    return total


def spread_over(files: list[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any] | None:
    """The long-history margin's mean over results (seeds), its standard deviation and a t-interval.

    Each seed retrains the encoder and readers and draws its own streams and questions, so the seeds' spread
    holds both the training's and the question sample's noise: the interval says how far a target is from
    what a few more seeds could show. None with fewer than two results.
    """
    values = np.array([f["long_history"]["margin"] for f in files if f["long_history"]["margin"] is not None])
    if len(values) < 2:
        return None
    mean, deviation = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * deviation / np.sqrt(len(values))
    return {"results": len(values), "mean": mean, "std": deviation, "confidence": confidence,
            "interval": [mean - half, mean + half]}  # fmt: skip


def points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def main() -> int:
    args = parse_args()
    figures = {}
    for path in args.results:
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            print(f"cannot read {path} as a memory-bench JSON: {error}", file=sys.stderr)
            return 2
        if args.part == "heldout":
            if "heldout" not in results:
                print(f"{path} has no held-out streams (run the benchmark with --heldout-streams)", file=sys.stderr)
                return 2
            results = {**results["heldout"], "config": results["config"]}
        figures[str(path)] = margins(results, args.policy, args.baseline, args.min_history)
    budgets = sorted({b for f in figures.values() for b in f["per_budget"]}, key=int)
    print(f"{args.policy} - {args.baseline} on backward questions, points")
    header = " | ".join(f"{b} tokens" for b in budgets)
    print(f"| result | seed | oracle backward (per reader) | {header} | >= {args.min_history:g}x (questions) |")
    print("|---|---|---|" + "---|" * len(budgets) + "---|")
    for path, f in figures.items():
        readers = f["oracle_backward_per_reader"] or []
        oracle = f"{f['oracle_backward']:.3f} (" + " / ".join(f"{r:.3f}" for r in readers) + ")"
        cells = " | ".join(points(f["per_budget"].get(b, {}).get("margin")) for b in budgets)
        long = f["long_history"]
        print(
            f"| {Path(path).name} | {f['seed']} | {oracle} | {cells} | "
            f"{points(long['margin'])} ({long['policy']['questions']}) |"
        )
    total = pooled_over(list(figures.values()))
    print(
        f"\npooled over {len(figures)} results, asked at >= {args.min_history:g}x: {args.policy} "
        f"{total['policy']['accuracy']:.3f}, {args.baseline} {total['baseline']['accuracy']:.3f}, "
        f"margin {points(total['margin'])} ({total['policy']['questions']} questions x budgets)"
    )
    spread = spread_over(list(figures.values()))
    if spread is not None:
        low, high = spread["interval"]
        print(
            f"per result: mean {points(spread['mean'])}, standard deviation {100 * spread['std']:.1f} points, "
            f"{spread['confidence']:.0%} t-interval of the mean [{points(low)}, {points(high)}] "
            f"({spread['results']} results)"
        )
    if args.json:
        from cortico.atomic import write_json_atomic

        write_json_atomic(
            args.json,
            {"results": figures, "pooled": total, "spread": spread, "min_history": args.min_history, "part": args.part},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
