"""Offline keyframe errors of a trained policy: on its own training demos and on demos at unseen seeds.

    .venv/bin/python benchmarks/policy_keyframe_errors.py --checkpoint runs/policy_suite/rvt/checkpoints/last \
        --data runs/policy_suite/demos          # -> benchmarks/results/policy_keyframe_errors.json

Closed-loop success (``policy_suite.py``) says how often a policy solves a task, not why it fails. This
asks the policy for the next keyframe at the observations where the expert started each keyframe, and
compares with the expert's (``cortico.policies.offline.keyframe_errors``). For a two-stream cortical
policy it also compares inference settings on the same weights (where to zoom, how to weigh the stages'
heatmaps; ``CORTICAL_DECODINGS``) on the unseen demos. It also times the parts of one
training step (loading a batch, the loss and its backward), to show where the training budget goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder (RUN/checkpoints/last)")
    parser.add_argument("--data", type=Path, required=True, help="the demos the policy was trained on")
    parser.add_argument("--train-samples", type=int, default=300, help="random training keyframe samples")
    parser.add_argument("--unseen-seed", type=int, default=7, help="seed base of the unseen demos")
    parser.add_argument("--unseen-episodes-per-task", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("runs/policy_keyframe_errors"))
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_keyframe_errors.json")
    return parser.parse_args()


# Inference settings of a two-stream cortical policy compared on the same weights: where the fine stage
# zooms (the coarse point, or moved onto the gaze ray) and how much its heatmaps weigh against the coarse
# stage's in the joint decoding (0: the coarse stage alone; 100: in effect the fine stage alone).
CORTICAL_DECODINGS = {
    "coarse only": {"fine_weight": 0.0},
    "fine only, gaze-moved focus": {"gaze_focus": True, "fine_weight": 100.0},
    "fine only": {"fine_weight": 100.0},
    "joint, fine weight 0.25": {"fine_weight": 0.25},
    "joint, fine weight 0.5": {"fine_weight": 0.5},
    "joint, fine weight 1": {"fine_weight": 1.0},
}


def decoding_variants(policy, dataset) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Keyframe errors of a cortical policy under each of CORTICAL_DECODINGS (same weights)."""
    from cortico.policies.offline import keyframe_errors

    original = policy.config
    results = {}
    try:
        for name, settings in CORTICAL_DECODINGS.items():
            policy.config = original.with_inference_settings({"gaze_focus": False, **settings})
            results[name] = keyframe_errors(policy, dataset)["all"]
    finally:
        policy.config = original
    return results


def decoding_error(policy, points: int = 256) -> dict[str, float]:  # noqa: ANN001
    """Centimetres lost by heatmap decoding alone: ideal Gaussian heatmaps of random workspace points, decoded."""
    import torch

    from cortico.policies.action_heads import heatmap_targets

    config, renderer = policy.config, policy.coarse_renderer
    low, high = torch.tensor(config.workspace_low), torch.tensor(config.workspace_high)
    truth = low + torch.rand(points, 3, generator=torch.Generator().manual_seed(0)) * (high - low)
    center, half = ((low + high) / 2).repeat(points, 1), ((high - low).max() / 2).repeat(points)
    uv, _ = renderer.world_to_pixel(truth[:, None], center, half)
    ideal = heatmap_targets(uv[:, :, 0], renderer.image_size, config.heatmap_sigma)
    decoded = renderer.heatmaps_to_world(ideal, center, half)
    error = 100 * (decoded - truth).norm(dim=1)
    return {"median_cm": float(error.median()), "max_cm": float(error.max())}


def step_time(policy, dataset, steps: int = 6, batch_size: int = 16) -> dict[str, float]:  # noqa: ANN001
    """Median seconds of loading a training batch and of the loss with its backward (first step dropped)."""
    import numpy as np
    import torch
    from torch.utils.data import default_collate

    generator = torch.Generator().manual_seed(0)
    policy.train()
    load, compute = [], []
    for step in range(steps):
        indices = torch.randint(len(dataset), (batch_size,), generator=generator).tolist()
        started = time.perf_counter()
        batch = default_collate([dataset[i] for i in indices])
        loaded = time.perf_counter()
        policy.zero_grad(set_to_none=True)
        policy.loss(batch, generator)["total"].backward()
        if step:
            load.append(loaded - started)
            compute.append(time.perf_counter() - loaded)
    policy.eval()
    return {"load_batch_s": float(np.median(load)), "loss_and_backward_s": float(np.median(compute)),
            "batch_size": batch_size, "torch_threads": torch.get_num_threads()}  # fmt: skip


def main() -> int:
    args = parse_args()
    import json

    import numpy as np
    import torch

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.policies.offline import keyframe_errors
    from cortico.policies.training import load_policy

    policy = load_policy(args.checkpoint).eval()
    trained = KeyframeDataset(args.data, cameras=policy.config.cameras, sample_steps="keyframes")
    unseen_root = args.workdir / f"unseen-seed{args.unseen_seed}"
    config = CollectionConfig.like(args.data, args.unseen_episodes_per_task, args.unseen_seed)
    tasks = sorted({e.task for e in trained.episodes})
    collect_into_cache(unseen_root, tasks, config, elsewhere="pass another --workdir", progress=False)
    unseen = KeyframeDataset(unseen_root, cameras=policy.config.cameras, sample_steps="keyframes")
    picks = np.random.default_rng(0).choice(len(trained), min(args.train_samples, len(trained)), replace=False)
    results = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "checkpoint": str(args.checkpoint),
        "policy": policy.config.type,
        "training_demos": keyframe_errors(policy, torch.utils.data.Subset(trained, picks.tolist())),
        "unseen_demos": keyframe_errors(policy, unseen),
        "decoding_only": decoding_error(policy) if hasattr(policy, "coarse_renderer") else None,
        "cortical_decodings_unseen": (
            decoding_variants(policy, unseen)
            if policy.config.type == "cortical" and policy.config.static_stream and policy.config.dynamic_stream
            else None
        ),
        "training_step": step_time(
            policy, KeyframeDataset(args.data, cameras=policy.config.cameras, sample_steps="all")
        ),  # fmt: skip
    }
    write_json_atomic(args.json, results)
    print(json.dumps({k: results[k] for k in ("training_step", "decoding_only")} | {
        name: results[name]["all"] for name in ("training_demos", "unseen_demos")}, indent=2))  # fmt: skip
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
