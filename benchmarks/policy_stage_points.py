"""Which stage of the cortical policy goes wrong: each decision's coarse-only, fine-only and joint points.

    .venv/bin/python benchmarks/policy_stage_points.py --run runs/policy_rev5/cortical --task peg-insert-side \
        --seeds 1000002,1000009 --json benchmarks/results/policy_stage_points.json

Replays evaluation episodes (the same seeds give the same rollouts as ``cortico eval``: decisions are
deterministic) and, at every decision, also asks ``CorticalPolicy.stage_points`` where the coarse stage alone
(in the workspace cube), the fine stage alone (in its zoomed cube) and both together (the decision) would put
the next position. Printed beside the scripted expert's keyframes for the same seed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _cell(point) -> str:
    """x y z in centimetres, or blanks."""
    return " " * 22 if point is None else " ".join(f"{100 * v:6.1f}" for v in point).center(22)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a cortical run (its last checkpoint is loaded)")
    parser.add_argument("--task", required=True)
    parser.add_argument("--seeds", required=True, help="comma-separated evaluation episode seeds")
    parser.add_argument("--keyframe-budget", type=int, default=15)
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_stage_points.json")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

    from cortico.atomic import write_json_atomic
    from cortico.envs.workers import EnvWorker
    from cortico.policies.cortical import CorticalPolicy
    from cortico.policies.evaluation import evaluation_env, run_episode
    from cortico.policies.expert import ExpertKeyframePolicy
    from cortico.policies.training import load_policy

    policy = load_policy(args.run).eval()
    if not isinstance(policy, CorticalPolicy):
        raise SystemExit(f"{args.run} holds a {policy.config.type!r} policy; stage points need a cortical or rvt one")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    recorded: list[dict[str, list[float]]] = []
    decide = policy.predict

    def predict_and_record(batch):  # the decision itself is unchanged; the stages are asked once more
        points = policy.stage_points(batch)
        recorded.append({name: np.round(point[0].tolist(), 4).tolist() for name, point in points.items()})
        return decide(batch)

    policy.predict = predict_and_record
    env = evaluation_env(EnvWorker(), args.task, policy, args.keyframe_budget)
    episodes = []
    for seed in seeds:
        recorded.clear()
        result = run_episode(policy, env, seed, args.keyframe_budget)
        expert = ExpertKeyframePolicy(args.task, seed, require_success=False)
        episodes.append({
            "seed": seed, "success": result.success, "decisions": list(recorded),
            "expert_keyframes": [np.round(a.position, 4).tolist() for a in expert.actions],
        })  # fmt: skip
        print(f"\n{args.task} seed {seed}: {'success' if result.success else 'failure'}")
        print(f"{'#':>3} {'coarse alone (cm)':^22} | {'fine alone':^22} | {'decision':^22} | {'expert':^22}")
        for index in range(max(len(recorded), len(expert.actions))):
            decision = recorded[index] if index < len(recorded) else {}
            theirs = expert.actions[index].position if index < len(expert.actions) else None
            rows = [decision.get("coarse"), decision.get("fine"), decision.get("decision"), theirs]
            print(f"{index:3d} " + " | ".join(_cell(row) for row in rows))
    write_json_atomic(args.json, {
        "command": "python benchmarks/policy_stage_points.py " + " ".join(sys.argv[1:]),
        "run": str(args.run), "task": args.task, "episodes": episodes,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
