"""Whether each memory still holds the stream's first task when "how many tasks had you finished" is asked.

    .venv/bin/python benchmarks/memory_count_evidence.py runs/memory/bench/d35683be18a1 \
        --policies cortico,uniform,curvature,fifo,merge --json benchmarks/results/memory_count_evidence_seed1.json

The reader counts finished tasks by pointing at the memory token whose oldest task lies furthest back (the count
pointer, ``memory/reader.py``): the answer is in memory only if some token still reaches back to the stream's
first task. This replays a finished benchmark run's held-out streams (its kept frame encoder, the questions its
seed asks) through the memories and counts, per memory and budget, the count questions whose evidence reaches
that far. Nothing is trained; a reader that still misses such questions misreads, rather than lacks, the evidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from cortico.atomic import write_json_atomic
from cortico.memory.bench import BenchConfig, TextCache, heldout_questions, make_example, run_memory, trained_encoder
from cortico.memory.reader import OLDEST_TASKS_AGO_FEATURE
from cortico.memory.streams import plan_streams

TEMPLATE = "tasks_finished"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path, help="a memory-bench run's kept stages (its bench.json and encoder)")
    parser.add_argument("--heldout-data", type=Path, default=Path("runs/memory/demos-heldout"))
    parser.add_argument("--heldout-streams", type=int, default=12, help="as the run was evaluated with")
    parser.add_argument("--policies", default="cortico,uniform")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    return parser.parse_args()


def run_config(workdir: Path) -> BenchConfig:
    """The benchmark settings a kept run was trained with (its ``bench.json``)."""
    saved = json.loads((workdir / "bench.json").read_text())["config"]
    known = {f.name for f in dataclasses.fields(BenchConfig)}
    return BenchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known})


def main() -> int:
    args = parse_args()
    if not (args.workdir / "encoder").exists():
        sys.exit(f"{args.workdir} holds no trained encoder (run `cortico memory bench` with that --workdir first)")
    config = run_config(args.workdir)
    encoder = trained_encoder([], config, args.workdir / "encoder")
    plans = plan_streams(args.heldout_data, args.heldout_streams, config.episodes_per_stream, config.seed)
    streams, records, questions = heldout_questions(args.heldout_data, plans, config, encoder, progress=True)
    text = TextCache()
    rows = []
    for policy in args.policies.split(","):
        for frames in config.budgets:
            reaching = asked = 0
            for sid in range(len(streams)):
                evidence, _ = run_memory(policy, frames * config.clear_tokens, records[sid], questions[sid], text)
                for q in (q for q in questions[sid] if q.template == TEMPLATE):
                    example = make_example(q, records[sid], evidence[q.id], text)
                    remembered = example.kinds != 0  # every token but the current frame
                    oldest = example.features[remembered, OLDEST_TASKS_AGO_FEATURE] * 10  # tasks ago, as stored
                    reaching += bool(remembered.any()) and round(float(np.max(oldest))) == int(q.options[q.answer])
                    asked += 1
            rows.append({"policy": policy, "budget_tokens": frames * config.clear_tokens, "questions": asked,
                         "first_task_in_memory": reaching, "rate": reaching / asked if asked else None})  # fmt: skip
            print(f"{policy} at {frames * config.clear_tokens} tokens: the first task is in memory for "
                  f"{reaching} of {asked} count questions", flush=True)  # fmt: skip
    if args.json:
        write_json_atomic(args.json, {"workdir": str(args.workdir), "seed": config.seed, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
