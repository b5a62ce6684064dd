"""Where closed-loop rollouts go wrong: each evaluation episode's keyframes beside the scripted expert's.

    .venv/bin/cortico eval --checkpoint RUN --suite mt10 --episodes-per-task 10      # writes RUN/eval/episodes.jsonl
    .venv/bin/python benchmarks/policy_rollout_trace.py --run RUN --json benchmarks/results/policy_rollout_trace.json

Per task, for the successful and the failed episodes apart: the median distance of the first keyframe and
of the first grasp from the expert's on the same seed, grasps more than 3 cm off, and keyframes repeated at
the end of an episode (``cortico.policies.rollout_trace``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run whose eval/episodes.jsonl to trace")
    parser.add_argument("--episodes", type=Path, help="the episodes file (default RUN/eval/episodes.jsonl)")
    parser.add_argument("--tasks", default="", help="comma-separated tasks (default: every task in the file)")
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_rollout_trace.json")
    parser.add_argument("--show-keyframes", choices=("none", "failed", "all"), default="none",
                        help="print each (failed) episode's keyframes beside the expert's")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

    from cortico.atomic import write_json_atomic
    from cortico.policies.evaluation import load_finished_episodes
    from cortico.policies.rollout_trace import keyframe_table, trace_rollouts

    path = args.episodes or args.run / "eval" / "episodes.jsonl"
    wanted = {t.strip() for t in args.tasks.split(",") if t.strip()}
    episodes = [e for e in load_finished_episodes(path).values() if not wanted or e.task in wanted]
    if not episodes:
        raise SystemExit(f"no episodes in {path}" + (f" for tasks {sorted(wanted)}" if wanted else ""))
    try:
        traced = trace_rollouts(episodes)
    except ValueError as error:
        raise SystemExit(f"{path}: {error}") from None
    results = {
        "command": "python benchmarks/policy_rollout_trace.py " + " ".join(sys.argv[1:]),
        "episodes_file": str(path),
        **traced,
    }
    write_json_atomic(args.json, results)
    print(json.dumps({k: results[k] for k in ("all", "tasks", "expert_failed_episodes")}, indent=1))
    for row in results["episodes"]:
        if args.show_keyframes == "all" or (args.show_keyframes == "failed" and not row["success"]):
            print(f"\n{row['task']} seed {row['seed']}: {'success' if row['success'] else 'failure'}")
            print(keyframe_table(row["keyframes"], row["expert_keyframes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
