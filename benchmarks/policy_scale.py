"""Training-step and decision time of the view-transformer policies at cortico's size and at RVT-2's size.

    python benchmarks/policy_scale.py --data DATASET --device cuda --json benchmarks/results/policy_scale_h200.json

Meant for a GPU machine (the default size is timed on the CPU by ``act_speed.py`` and the policy suite).
For each policy and size: parameters, one optimiser step (loss, backward, AdamW with gradient clipping) on
batches of real keyframe samples already on the device, in float32 and under bfloat16 autocast, the peak
device memory, and one decision (``predict`` on one sample, perception from the fused cloud on) in float32
and with bfloat16 attention. Weights are untrained (they do not change the cost), the gaze model too.

RVT-2's size is its view transformer as released (NVlabs/RVT ``mvt/config.py`` + ``configs/rvt2.yaml``):
224-px virtual views in 14-px patches, token width 512, 8 heads, 4 within-view + 4 cross-view layers,
64 decoder channels; both stages of the cortical policy take it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import sys
import time
from pathlib import Path

from perception_speed import timed  # median milliseconds after a warm-up (this folder is on the path)

RESULTS = Path(__file__).resolve().parent / "results"
RVT2_VIEW = {"image_size": 224, "patch": 14, "dim": 512, "heads": 8, "intra_layers": 4, "cross_layers": 4,
             "decoder_channels": 64}  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a keyframe dataset (cortico collect)")
    parser.add_argument("--policies", default="cortical,rvt")
    parser.add_argument("--sizes", default="default,rvt2")
    parser.add_argument("--batch-sizes", default="16,64", help="training batch sizes to time")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (after 3 warm-up steps)")
    parser.add_argument("--repeats", type=int, default=30, help="timed decisions")
    parser.add_argument("--text-model", default="minilm", help="text encoder (a local directory off-line)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_scale.json")
    return parser.parse_args()


def build_config(kind: str, size: str, text_model: str):  # noqa: ANN201
    """The policy's default configuration, or with RVT-2's view transformer in both stages."""
    from cortico.perception.gaze import GazeConfig
    from cortico.policies.base import POLICIES

    config_class = POLICIES.get(kind).config_class
    config = config_class(text_model=text_model, gaze=GazeConfig(text_model=text_model))
    if size == "rvt2":
        config = dataclasses.replace(
            config, coarse=dataclasses.replace(config.coarse, **RVT2_VIEW),
            fine=dataclasses.replace(config.fine, **RVT2_VIEW),
        )  # fmt: skip
    elif size != "default":
        raise ValueError(f"unknown size {size!r}; known: default, rvt2")
    return config


def synchronised(function, device):  # noqa: ANN001, ANN201
    """``function`` followed by waiting for the device, so wall-clock timing covers its kernels."""
    import torch

    def run() -> None:
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run


def time_training(policy, batches: list, device, steps: int, autocast: bool) -> float:  # noqa: ANN001
    """Median milliseconds of one optimiser step over ``steps`` steps (3 warm-up steps first)."""
    import torch

    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    cycle = itertools.cycle(batches)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = policy.loss(next(cycle), generator)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()

    run = synchronised(step, device)
    for _ in range(2):
        run()
    return timed(run, steps)


def main() -> int:
    args = parse_args()
    import torch
    from torch.utils.data import default_collate

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.policies.base import POLICIES, to_device

    device = torch.device(args.device)
    dataset = KeyframeDataset(args.data)
    samples = [dataset[i] for i in range(len(dataset))]
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "software": {**software_versions(), "torch": torch.__version__},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dataset_samples": len(samples),
        "rows": [],
    }
    one = to_device(default_collate(samples[:1]), device)
    for kind, size in itertools.product(args.policies.split(","), args.sizes.split(",")):
        torch.manual_seed(0)
        policy = POLICIES.get(kind)(build_config(kind, size, args.text_model)).to(device)
        policy.text_encoder.model.float()  # a half-precision copy of the text model may be what was carried
        row: dict[str, object] = {
            "policy": kind, "size": size,
            "parameters": sum(p.numel() for p in policy.parameters() if p.requires_grad),
        }  # fmt: skip
        for batch_size in map(int, args.batch_sizes.split(",")):
            batches = [
                to_device(default_collate([samples[(start + i) % len(samples)] for i in range(batch_size)]), device)
                for start in range(0, 4 * batch_size, batch_size)
            ]  # fmt: skip
            policy.train()
            for precision, autocast in (("float32", False), ("bfloat16_autocast", True)):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                try:
                    milliseconds = time_training(policy, batches, device, args.steps, autocast)
                except RuntimeError as error:  # a kernel without bfloat16 support: report it, time the rest
                    row[f"train_error_batch{batch_size}_{precision}"] = str(error).splitlines()[0][:300]
                    continue
                row[f"train_ms_batch{batch_size}_{precision}"] = round(milliseconds, 2)
                row[f"train_samples_per_s_batch{batch_size}_{precision}"] = round(1000 * batch_size / milliseconds, 1)
                if device.type == "cuda":
                    row[f"train_peak_gib_batch{batch_size}_{precision}"] = round(
                        torch.cuda.max_memory_allocated(device) / 2**30, 2
                    )
        policy.eval()
        for precision in ("float32", "bfloat16"):
            policy.config = policy.config.with_inference_settings({"attention_precision": precision})
            for _ in range(5):  # warm-up beyond timed()'s one call: kernel choices, allocator, text cache
                policy.predict(one)
            row[f"decide_ms_{precision}_attention"] = round(
                timed(synchronised(functools.partial(policy.predict, one), device), args.repeats), 2
            )
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        write_json_atomic(args.json, results)
        del policy
        if device.type == "cuda":
            torch.cuda.empty_cache()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    write_json_atomic(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
