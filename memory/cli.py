"""Commands of the memory folder: ``memory bench`` and ``qa build|eval``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_DATA = Path("runs/memory/demos")
DEFAULT_HELDOUT_DATA = Path("runs/memory/demos-heldout")
OLDER_TASKS_HELP = "also ask about moments two to six tasks back (default; --no-older-tasks: the set before 2026-12-04)"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    memory = subparsers.add_parser("memory", help="streaming video memory: the QA benchmark")
    sub = memory.add_subparsers(dest="memory_command", metavar="SUBCOMMAND")
    memory.set_defaults(handler=lambda args: memory.print_help() or 2)
    bench = sub.add_parser(
        "bench",
        help="compare memory policies at equal token budgets on held-out streams",
        description="Chain simulator episodes into long streams, ask StreamEQA-style questions, and compare memory "
        "policies (with the blind and oracle bounds). Collects MT10 demos into runs/memory/demos unless --data.",
    )
    bench.add_argument("--data", type=Path, help="demo dataset with a front camera, every step stored")
    bench.add_argument("--streams", type=int, default=4, help="held-out test streams")
    bench.add_argument(
        "--train-streams", type=int, default=24, help="chains of the training episodes (never in a test stream)"
    )
    bench.add_argument("--episodes-per-stream", type=int, default=10)
    bench.add_argument(
        "--budget", default="20,40,80,160", help="token budgets, comma-separated (4 tokens = one clear frame)"
    )
    bench.add_argument("--policies", default="cortico,curvature,uniform,fifo,merge")
    bench.add_argument("--questions-per-stream", type=int, default=60)
    bench.add_argument("--reader-steps", type=int, default=3000)
    bench.add_argument(
        "--readers", type=int, default=1, help="readers trained from successive seeds, answering as an ensemble"
    )
    bench.add_argument(
        "--reader-candidates", type=int, default=0,
        help="train this many readers (0: --readers) and keep the --readers with the best mean accuracy per "
        "template on their own training questions (a seed that never learned a rare template is left out)",
    )  # fmt: skip
    bench.add_argument(
        "--selection-streams", type=int, default=0,
        help="with --reader-candidates: keep the questions of this many training streams out of the readers' "
        "training and judge the candidates on them instead of on their own training questions (0: off)",
    )  # fmt: skip
    bench.add_argument("--encoder-steps", type=int, default=3000, help="training steps of the probe frame encoder")
    bench.add_argument(
        "--encoder-scenes", type=int, default=200,
        help="freshly placed simulator scenes per task added to the frame encoder's training frames (0: none)",
    )  # fmt: skip
    bench.add_argument(
        "--pointer-loss-weight", type=float, default=0.0, help="deep supervision of the reader's pointers (0: off)"
    )
    bench.add_argument(
        "--reader-attention-dropout",
        type=float,
        default=0.1,
        help="dropout on the reader's attention weights (0: readers train 1.3-1.6x faster on a CPU)",
    )
    bench.add_argument(
        "--balance-templates",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="train the reader on every question template equally often (tried; no measurable change, BENCHMARKS.md)",
    )
    bench.add_argument(
        "--older-tasks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=OLDER_TASKS_HELP,
    )
    bench.add_argument(
        "--sources-per-question", type=int, default=6, help="memories each training question is read from"
    )
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument(
        "--heldout-streams", type=int, default=0,
        help="also evaluate the trained encoder and readers on this many streams chained from a second demo "
        "collection (more held-out questions than the training demos leave over; trains nothing more, so a "
        "finished run adds them from its kept stages)",
    )  # fmt: skip
    bench.add_argument(
        "--heldout-data", type=Path,
        help=f"the second demo collection for --heldout-streams (default: MT10 demos collected with seed 1 into "
        f"{DEFAULT_HELDOUT_DATA}; it must share no episode with --data)",
    )  # fmt: skip
    bench.add_argument("--json", help="write the results as JSON")
    bench.add_argument(
        "--workdir", type=Path,
        help="where the trained frame encoder and readers are kept as each finishes, so that the same command "
        "run again resumes (default: runs/memory/bench/<hash of the settings and demos>); a run without an encoder "
        "copies the one a folder beside it kept with the same encoder settings and demos",
    )  # fmt: skip
    bench.set_defaults(handler=_bench)

    qa = subparsers.add_parser("qa", help="build or score streaming embodied QA sets")
    qa_sub = qa.add_subparsers(dest="qa_command", metavar="SUBCOMMAND")
    qa.set_defaults(handler=lambda args: qa.print_help() or 2)
    build = qa_sub.add_parser("build", help="chain episodes into streams and write their questions (JSON lines)")
    build.add_argument("--data", type=Path, required=True, help="demo dataset (front camera, every step stored)")
    build.add_argument("--streams", type=int, default=4)
    build.add_argument("--episodes-per-stream", type=int, default=10)
    build.add_argument("--questions-per-stream", type=int, default=60)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--older-tasks", action=argparse.BooleanOptionalAction, default=True, help=OLDER_TASKS_HELP)
    build.add_argument("--out", required=True, help="questions file (.jsonl); the stream plan is written beside it")
    build.set_defaults(handler=_qa_build)
    score = qa_sub.add_parser("eval", help='score answers (JSON lines {"id", "choice"}) against a question file')
    score.add_argument("--questions", required=True)
    score.add_argument("--answers", required=True)
    score.set_defaults(handler=_qa_eval)


def _ensure_data(
    path: Path | None, default: Path = DEFAULT_DATA, episodes_per_task: int = 12, seed: int = 0, option: str = "--data"
) -> Path:
    """``path`` (given by ``option``), or MT10 demos (front camera, 64 px) collected into ``default`` from ``seed``."""
    if path is not None:
        return path
    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.envs.task_catalog import suite_tasks

    config = CollectionConfig(episodes_per_task=episodes_per_task, cameras=("front",), image_size=64, seed=seed)
    collect_into_cache(default, list(suite_tasks("mt10")), config, elsewhere=f"pass {option} DIR")
    return default


def _bench(args: argparse.Namespace) -> int:
    from cortico.atomic import write_json_atomic
    from cortico.memory.bench import BenchConfig, default_workdir, run_benchmark
    from cortico.memory.factory import MEMORIES

    budgets = [int(b) for b in args.budget.split(",") if b.strip()]
    if not budgets or any(b < 4 for b in budgets):
        raise ValueError(f"budgets must be token counts >= 4 (one clear frame), got {args.budget!r}")
    for name in ("reader_steps", "readers", "encoder_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.reader_candidates and args.reader_candidates < args.readers:
        raise ValueError(
            f"--reader-candidates must be 0 (off) or at least --readers ({args.readers}), got {args.reader_candidates}"
        )
    if args.encoder_scenes < 0:
        raise ValueError(f"--encoder-scenes must be >= 0 (0: demo frames only), got {args.encoder_scenes}")
    if not args.pointer_loss_weight >= 0:
        raise ValueError(f"--pointer-loss-weight must be >= 0 (0: off), got {args.pointer_loss_weight}")
    if args.heldout_streams < 0:
        raise ValueError(f"--heldout-streams must be >= 0 (0: none), got {args.heldout_streams}")
    if not 0 <= args.reader_attention_dropout < 1:
        raise ValueError(f"--reader-attention-dropout must be in [0, 1), got {args.reader_attention_dropout}")
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    for policy in policies:
        MEMORIES.get(policy)
    config = BenchConfig(
        train_streams=args.train_streams,
        test_streams=args.streams,
        episodes_per_stream=args.episodes_per_stream,
        questions_per_stream=args.questions_per_stream,
        budgets=tuple(max(1, b // 4) for b in budgets),
        policies=policies,
        reader_steps=args.reader_steps,
        readers=args.readers,
        reader_candidates=args.reader_candidates,
        selection_streams=args.selection_streams,
        encoder_steps=args.encoder_steps,
        encoder_scenes_per_task=args.encoder_scenes,
        pointer_loss_weight=args.pointer_loss_weight,
        balance_templates=args.balance_templates,
        reader_attention_dropout=args.reader_attention_dropout,
        older_tasks=args.older_tasks,
        sources_per_question=args.sources_per_question,
        seed=args.seed,
    )
    data = _ensure_data(args.data)
    heldout_data = None
    if args.heldout_streams:
        from cortico.envs.task_catalog import suite_tasks

        per_task = -(-args.heldout_streams * args.episodes_per_stream // len(suite_tasks("mt10")))
        heldout_data = _ensure_data(args.heldout_data, DEFAULT_HELDOUT_DATA, max(12, per_task), 1, "--heldout-data")
    workdir = args.workdir or default_workdir(config, data)
    print(f"trained stages are kept in {workdir} (the same command resumes from them)")
    results = run_benchmark(
        data, config, workdir=workdir, heldout_data=heldout_data, heldout_streams=args.heldout_streams
    )
    if results["stages_loaded"]:
        print(f"loaded, not trained again: {', '.join(results['stages_loaded'])}")
    _print_results(results, f"{config.test_streams} test streams")
    if "heldout" in results:
        _print_results(results["heldout"], f"{args.heldout_streams} held-out streams from {heldout_data}")
    if args.json:
        write_json_atomic(args.json, results)
        print(f"results: {args.json}")
    return 0


def _print_results(results: dict, title: str) -> None:
    """The blind and oracle bounds, every policy's accuracy, and the pooled backward bins, as Markdown tables."""
    print(f"\n## {title} ({results['streams']['test_questions']} questions)")
    blind, oracle = results["blind"]["overall"], results["oracle"]["overall"]
    print(f"blind (question and options only): {blind:.3f}; oracle (every frame): {oracle:.3f}")
    print("| policy | budget (tokens) | overall | backward | real-time | forward | evidence kept (backward) |")
    print("|---|---|---|---|---|---|---|")
    for row in results["policies"].values():
        a = row["accuracy"]
        modes = " | ".join(f"{a.get(f'mode:{m}', 0):.3f}" for m in ("backward", "real-time", "forward"))
        kept = row["backward_evidence_retained"]
        kept = "-" if kept is None else f"{kept:.2f}"
        print(f"| {row['policy']} | {row['budget_tokens']} | {a['overall']:.3f} | {modes} | {kept} |")
    for key, title in (
        ("backward_by_history_pooled", "the stream's length when asked, in budgets"),
        ("backward_by_evidence_age_pooled", "the evidence's age when asked, in seconds"),
    ):
        pooled = results[key]
        labels = list(next(iter(pooled.values())))
        print(f"\nbackward accuracy by {title}, over every budget (questions)")
        print("| policy | " + " | ".join(labels) + " |")
        print("|---|" + "---|" * len(labels))
        for policy, bins in pooled.items():
            cells = [f"{b['accuracy']:.3f} ({b['questions']})" if b["questions"] else "-" for b in bins.values()]
            print(f"| {policy} | " + " | ".join(cells) + " |")


def _qa_build(args: argparse.Namespace) -> int:
    from cortico.atomic import write_json_atomic
    from cortico.memory.qa import balance_across_streams, save_questions, stream_questions
    from cortico.memory.streams import build_stream, plan_streams

    plans = plan_streams(args.data, args.streams, args.episodes_per_stream, args.seed)
    streams = [build_stream(args.data, plan) for plan in plans]
    per_stream = stream_questions(
        streams, args.seed, args.questions_per_stream, args.episodes_per_stream, args.older_tasks
    )
    questions = [q for balanced in balance_across_streams(per_stream, args.seed) for q in balanced]
    out = Path(args.out)
    save_questions(out, questions)
    write_json_atomic(out.with_suffix(".streams.json"), {"data": str(args.data), "seed": args.seed, "streams": plans})
    plan = out.with_suffix(".streams.json")
    print(f"{len(questions)} questions over {len(streams)} streams: {out} (stream plan: {plan})")
    return 0


def _qa_eval(args: argparse.Namespace) -> int:
    from collections import defaultdict

    from cortico.memory.qa import load_questions

    questions = {q.id: q for q in load_questions(args.questions)}
    choices = {}
    for number, line in enumerate(Path(args.answers).read_text().splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                choices[row["id"]] = int(row["choice"])
            except (json.JSONDecodeError, KeyError, ValueError) as error:
                raise ValueError(f'{args.answers}:{number}: expected {{"id": ..., "choice": 0-3}} ({error})') from error
    unknown = sorted(set(choices) - set(questions))
    if unknown:
        raise ValueError(f"answers for unknown questions: {unknown[:5]}")
    cells: dict[str, list[bool]] = defaultdict(list)
    for qid, q in questions.items():
        cells[q.cell].append(choices.get(qid) == q.answer)
    total = [ok for v in cells.values() for ok in v]
    for cell, values in sorted(cells.items()):
        print(f"{cell:<24} {sum(values)}/{len(values)} = {sum(values) / len(values):.3f}")
    print(f"{'overall':<24} {sum(total)}/{len(total)} = {sum(total) / len(total):.3f} (unanswered count as wrong)")
    return 0
