"""Time per ``act()`` decision on one CPU core for the three policies side by side.

    .venv/bin/python benchmarks/act_speed.py          # -> benchmarks/results/act_speed.json

Each policy is built at its default size (weights do not change the cost: a trained and an untrained
cortical policy take the same time) and decides on one real observation of the embedded suite (four
cameras at 96 px, as in the policy suite), perception included. Rounds alternate between the policies so
that the machine's load falls on all of them alike; each round's figure is a median of ``--repeats``
decisions. ``torch.compile`` of the view transformers was tried and gave nothing on this CPU
(docs/policies.md), so the policies run eagerly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from perception_speed import timed  # median milliseconds after a warm-up (this folder is on the path)

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", default="cortical,rvt,cnn")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=KIND:JSON",
        help="also time KIND built with these settings, e.g. "
        "cortical-64px=cortical:'{\"coarse\": {\"image_size\": 64}}'; repeatable",
    )  # fmt: skip
    parser.add_argument("--task", default="pick-place-v3")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path, default=RESULTS / "act_speed.json")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

    import torch

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.metaworld_backend import MetaWorldEnv
    from cortico.policies.base import POLICIES

    torch.manual_seed(0)
    torch.set_num_threads(1)
    kinds = [k.strip() for k in args.policies.split(",") if k.strip()]
    variants = {}
    for kind in kinds:
        policy_class = POLICIES.get(kind)
        variants[kind] = policy_class(policy_class.config_class()).eval()
    for name, kind, settings in map(_parse_variant, args.variant):
        policy_class = POLICIES.get(kind)
        variants[name] = policy_class(policy_class.config_class.from_dict(settings)).eval()
    first = next(iter(variants.values()))
    env = MetaWorldEnv(args.task, cameras=first.config.cameras, image_size=args.image_size)
    observation = env.reset(seed=123)
    env.close()

    first_call = {}
    for name, policy in variants.items():  # warm-up (loads the text encoder)
        started = time.perf_counter()
        policy.act(observation)
        first_call[name] = time.perf_counter() - started
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(args.rounds):
        for name, policy in variants.items():
            rounds[name].append(timed(lambda p=policy: p.act(observation), args.repeats))
        print(f"round {index + 1}: " + ", ".join(f"{n} {v[-1]:.1f} ms" for n, v in rounds.items()), flush=True)

    results = {
        "command": "python benchmarks/act_speed.py " + " ".join(sys.argv[1:]),
        "software": software_versions(),
        "cpu": _cpu_name(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "act_ms_one_thread": {name: statistics.median(values) for name, values in rounds.items()},
        "act_ms_rounds": rounds,
        "first_decision_seconds": first_call,
    }
    write_json_atomic(args.json, results)
    print(json.dumps({k: results[k] for k in ("act_ms_one_thread", "first_decision_seconds")}, indent=2))
    return 0


def _parse_variant(text: str) -> tuple[str, str, dict]:
    """``NAME=KIND:JSON`` -> (name, policy kind, settings)."""
    name, _, rest = text.partition("=")
    kind, _, settings = rest.partition(":")
    try:
        parsed = json.loads(settings or "{}")
    except json.JSONDecodeError as error:
        raise SystemExit(f"--variant {text!r}: the settings are not JSON ({error})") from error
    if not name or not kind or not isinstance(parsed, dict):
        raise SystemExit(f"--variant {text!r}: expected NAME=KIND:JSON-object")
    return name, kind, parsed


def _cpu_name() -> str:
    """The processor's model name (Linux), to read timings from different machines side by side."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
