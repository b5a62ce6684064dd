"""Success of trained policies on several sets of evaluation seeds, and their differences episode by episode.

    .venv/bin/python benchmarks/policy_seed_sets.py runs/policy_rev3/cortical runs/policy_rev3/rvt --seeds 0,1,2 \
        --json benchmarks/results/policy_seed_sets_rev3.json

One set of 100 MT10 episodes (10 per task) gives a success rate with a 95% interval about 0.15 wide, and the
difference of two policies on it is noisier still; more seed sets narrow both. Every run is evaluated on the
same episodes (task and seed), so the first run's lead over each other run is paired episode by episode
(``paired_difference``). Episodes resume from ``RUN/<folder>/episodes.jsonl``: ``eval`` for seed base 0 (what
``benchmarks/policy_suite.py`` wrote), ``eval_seed<K>`` for the others, with ``_<tag>`` appended when
``--inference`` or ``--controller`` changes a setting, or the code changed what an episode does, so those
episodes never mix with the untagged ones; ``--versus-defaults`` then pairs each run with its own untagged
episodes (does the setting, or the change, change success?).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="training runs (the first is the reference of differences)")
    parser.add_argument("--seeds", default="0,1,2", help="evaluation seed bases, comma-separated")
    parser.add_argument("--suite", default="mt10")
    parser.add_argument("--tasks", default="", help="comma-separated tasks instead of the suite's")
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument("--keyframe-budget", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2, help="Ray workers running evaluation episodes")
    parser.add_argument("--inference", default="", help="JSON inference settings applied to every run")
    parser.add_argument("--controller", default="", help="JSON keyframe controller settings for every run")
    parser.add_argument("--tag", default="", help="folder suffix for these settings' (or this code's) episodes")
    parser.add_argument(
        "--versus-defaults", action="store_true",
        help="with --tag: also pair each run with its own untagged episodes (default settings, earlier code)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_seed_sets.json")
    args = parser.parse_args()
    if (args.inference or args.controller) and not args.tag:
        parser.error("--inference and --controller need --tag: the tag keeps those episodes apart from the defaults'")
    if args.versus_defaults and not args.tag:
        parser.error("--versus-defaults compares the tagged episodes with the untagged ones: give --tag")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
        args.settings = json.loads(args.inference) if args.inference else {}
        args.controller_settings = json.loads(args.controller) if args.controller else {}
    except ValueError as error:
        parser.error(f"--seeds must be integers, --inference and --controller JSON objects ({error})")
    if not isinstance(args.settings, dict) or not isinstance(args.controller_settings, dict):
        parser.error(f"--inference and --controller must be JSON objects, got {args.inference!r}, {args.controller!r}")
    return args


def evaluation_folder(run: Path, seed: int, tag: str) -> Path:
    """Where a run's episodes on one seed base live (seed 0 without a tag: the policy suite's ``eval``)."""
    name = "eval" if seed == 0 else f"eval_seed{seed}"
    return run / (f"{name}_{tag}" if tag else name)


def evaluate_sets(
    policy,  # noqa: ANN001 - a loaded KeyframePolicy (imported lazily, after the arguments are checked)
    run: Path,
    tag: str,
    args: argparse.Namespace,
    tasks: list[str],
    controller: dict | None = None,
) -> tuple[dict, dict]:
    """A policy's results per seed set and its episodes over all of them, keyed by (task, seed)."""
    from cortico.policies.evaluation import evaluate_policy, write_report

    sets, pooled = {}, {}
    for seed in args.seed_list:
        folder = evaluation_folder(run, seed, tag)
        report = evaluate_policy(
            policy, tasks, args.episodes_per_task, seed=seed, keyframe_budget=args.keyframe_budget,
            workers=args.workers, checkpoint=run, episodes_file=folder / "episodes.jsonl", controller=controller,
        )  # fmt: skip
        write_report(report, folder / "report.json", title=f"{policy.config.type}, seeds {seed}")
        summary = report.summary()
        sets[f"seeds {seed}"] = {
            "mean_success": summary["mean_success"],
            "successes": summary["successes"],
            "episodes": summary["episodes"],
            "median_decision_ms": summary["median_decision_ms"],
            "per_task": {task: row["success_rate"] for task, row in report.per_task().items()},
        }
        pooled.update({(e.task, e.seed): e for e in report.episodes})
    return sets, pooled


def main() -> int:
    args = parse_args()
    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.task_catalog import resolve_tasks
    from cortico.policies.evaluation import paired_difference, wilson_interval
    from cortico.policies.training import load_policy

    tasks = resolve_tasks(suite=None if args.tasks else args.suite, tasks=args.tasks or None)
    episodes: dict[str, dict] = {}  # run -> (task, seed) -> EpisodeResult, over every seed set
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": date.today().isoformat(),
        "software": software_versions(),
        "settings": {
            "seeds": args.seed_list,
            "tasks": tasks,
            "episodes_per_task": args.episodes_per_task,
            "keyframe_budget": args.keyframe_budget,
            "inference": args.settings,
            "controller": args.controller_settings,
        },
        "runs": {},
    }
    for run in args.runs:
        policy = load_policy(run)
        defaults = policy.config.inference_values()
        policy.config = policy.config.with_inference_settings(args.settings)
        name = str(run)
        sets, pooled = evaluate_sets(policy, run, args.tag, args, tasks, args.controller_settings)
        wins = sum(e.success for e in pooled.values())
        episodes[name] = pooled
        results["runs"][name] = {
            "type": policy.config.type,
            "inference_settings": policy.config.inference_values(),
            "sets": sets,
            "successes": wins,
            "episodes": len(pooled),
            "mean": wins / len(pooled),
            "wilson95": list(wilson_interval(wins, len(pooled))),
        }
        if args.versus_defaults:  # the same checkpoint with its own settings, on the same episodes
            policy.config = policy.config.with_inference_settings(defaults)
            _, default_episodes = evaluate_sets(policy, run, "", args, tasks)
            results["runs"][name]["minus_defaults"] = paired_difference(pooled, default_episodes)
        write_json_atomic(args.json, results)
    reference = str(args.runs[0])
    results["differences"] = {
        f"{reference} - {name}": paired_difference(episodes[reference], episodes[name])
        for name in episodes
        if name != reference
    }
    write_json_atomic(args.json, results)
    print(json.dumps({k: v for k, v in results.items() if k not in ("software",)}, indent=1, default=str)[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
