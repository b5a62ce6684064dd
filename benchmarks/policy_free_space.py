"""Where the cortical policy's fine stage helps: offline stage errors by the coarse point's clearance.

    .venv/bin/python benchmarks/policy_free_space.py --runs runs/policy_rev5/cortical,runs/policy_rev5/cortical_seed1 \
        --data runs/policy_rev5/demos --json benchmarks/results/policy_free_space_rev5.json

Collects (once, into ``--workdir``) demos at an unseen seed base like the training demos, asks each run at
every keyframe sample where the coarse stage alone, the fine stage alone and both together would go
(``CorticalPolicy.stage_points``), and groups the errors by the coarse point's clearance: its distance to the
nearest point of the fused cloud (``Scene.clearance``). A target in free space (an approach above an object,
a carry, a pull) is placed by things the fine stage's zoomed cube may not hold; this shows from which
clearance on the joint decoding stops improving on the coarse stage alone (``free_space_fine_weight``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CLEARANCE_BINS_CM = (0.0, 2.0, 5.0, 10.0, float("inf"))


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Median errors (cm) of each stage and how often the joint decision beats the coarse stage alone."""
    import numpy as np

    out: dict[str, float] = {"samples": len(rows)}
    for name in ("coarse", "fine", "decision"):
        out[f"{name}_median_cm"] = float(np.median([r[name] for r in rows]))
    out["decision_better_than_coarse"] = float(np.mean([r["decision"] < r["coarse"] for r in rows]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="comma-separated two-stream cortical runs")
    parser.add_argument("--data", type=Path, required=True, help="the demos the runs were trained on")
    parser.add_argument("--unseen-seed", type=int, default=7, help="seed base of the unseen demos")
    parser.add_argument("--episodes-per-task", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("runs/policy_unseen7"))
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_free_space.json")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # the unseen demos are rendered headless
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

    import torch
    from torch.utils.data import DataLoader

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.envs.dataset.index import DatasetIndex
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.policies.cortical import CorticalPolicy
    from cortico.policies.scene import build_scene
    from cortico.policies.training import load_policy

    tasks = sorted({entry.task for entry in DatasetIndex.load(args.data).episodes})
    config = CollectionConfig.like(args.data, args.episodes_per_task, args.unseen_seed)
    collect_into_cache(args.workdir, tasks, config, elsewhere="pass another --workdir", progress=False)
    runs: dict[str, dict] = {}
    for run in [r.strip() for r in args.runs.split(",") if r.strip()]:
        policy = load_policy(run).eval()
        if not (isinstance(policy, CorticalPolicy) and policy.config.static_stream and policy.config.dynamic_stream):
            raise SystemExit(f"{run} is not a two-stream cortical policy")
        dataset = KeyframeDataset(args.workdir, cameras=policy.config.cameras, sample_steps="keyframes")
        rows = []
        with torch.no_grad():
            for batch in DataLoader(dataset, batch_size=8):
                points = policy.stage_points(batch)
                clearance = build_scene(batch, policy.config.bounds).clearance(points["coarse"])
                target = batch["action"][:, :3].float()
                errors = {name: 100 * (point - target).norm(dim=1) for name, point in points.items()}
                for i, task in enumerate(batch["task"]):
                    rows.append({"task": task, "clearance": 100 * float(clearance[i]),
                                 **{name: float(error[i]) for name, error in errors.items()}})  # fmt: skip
        bins = {}
        for low, high in zip(CLEARANCE_BINS_CM, CLEARANCE_BINS_CM[1:]):
            chosen = [r for r in rows if low <= r["clearance"] < high]
            if chosen:
                bins[f"{low:g}-{high:g} cm"] = _summary(chosen)
        per_task = defaultdict(list)
        for row in rows:
            per_task[row["task"]].append(row)
        runs[run] = {
            "by_clearance": bins,
            "per_task": {task: _summary(chosen) for task, chosen in sorted(per_task.items())},
            "all": _summary(rows),
        }
    command = "python benchmarks/policy_free_space.py " + " ".join(sys.argv[1:])
    write_json_atomic(args.json, {"command": command, "runs": runs})
    print(json.dumps({run: result["by_clearance"] for run, result in runs.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
