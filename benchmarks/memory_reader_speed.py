"""Seconds per training step of the memory reader, with and without dropout on its attention weights.

    .venv/bin/python benchmarks/memory_reader_speed.py --json benchmarks/results/memory_reader_speed.json

The examples are random but shaped like the memory bench's reference training set (seed 3, 2026-12-05): 64-wide
frame tokens, 384-wide instruction texts (five distinct per example), and token counts drawn from that set's
deciles (budgeted memories are short, oracle examples up to ~540 tokens); a step's cost depends on those
shapes only. The two settings alternate in rounds in one process, so a busy machine slows both alike, and the
ratio of their medians is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cortico.memory.reader import FEATURES, MemoryReader, ReaderExample, train_reader

FRAME_DIM, TEXT_DIM = 64, 384
# deciles of the token count per training example of the reference run (3,000 of seed 3's examples)
TOKEN_DECILES = (16, 24, 24, 43, 44, 82, 84, 148, 164, 197, 539)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=30, help="training steps per round and setting")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def shaped_examples(count: int, seed: int = 0) -> list[ReaderExample]:
    """Random examples whose token counts follow ``TOKEN_DECILES`` (uniform within each decile)."""
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(count):
        decile = int(rng.integers(10))
        tokens = int(rng.integers(TOKEN_DECILES[decile], TOKEN_DECILES[decile + 1] + 1))
        examples.append(
            ReaderExample(
                question=rng.normal(size=TEXT_DIM).astype(np.float32),
                options=rng.normal(size=(4, TEXT_DIM)).astype(np.float32),
                tokens=rng.normal(size=(tokens, FRAME_DIM)).astype(np.float32),
                features=rng.normal(size=(tokens, FEATURES)).astype(np.float32),
                kinds=rng.integers(0, 4, size=tokens),
                answer=int(rng.integers(4)),
                instructions=rng.normal(size=(5, TEXT_DIM)).astype(np.float32),
                instruction_index=rng.integers(0, 5, size=tokens),
            )
        )
    return examples


def seconds_per_step(examples: list[ReaderExample], attention_dropout: float, steps: int) -> float:
    """Mean seconds of one ``train_reader`` step (batch 32) of a fresh reader."""
    torch.manual_seed(0)
    reader = MemoryReader(FRAME_DIM, TEXT_DIM, attention_dropout=attention_dropout)
    started = time.perf_counter()
    train_reader(reader, examples, steps=steps, seed=0)
    return (time.perf_counter() - started) / steps


def main() -> int:
    args = parse_args()
    examples = shaped_examples(args.examples)
    settings = (0.1, 0.0)
    times: dict[float, list[float]] = {rate: [] for rate in settings}
    for round_ in range(args.rounds):
        for rate in settings:
            times[rate].append(seconds_per_step(examples, rate, args.steps))
            print(f"round {round_ + 1}: attention dropout {rate}: {1000 * times[rate][-1]:.0f} ms/step", flush=True)
    medians = {rate: statistics.median(values) for rate, values in times.items()}
    report = {
        "examples": args.examples,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "ms_per_step": {str(rate): [round(1000 * t, 1) for t in values] for rate, values in times.items()},
        "median_ms_per_step": {str(rate): round(1000 * t, 1) for rate, t in medians.items()},
        "speed_up_without_attention_dropout": round(medians[0.1] / medians[0.0], 2),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        from cortico.atomic import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
