"""Commands of the language folder: ``language train|parse|ask|learn|bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_MODULE = Path("runs/language")
DEFAULT_RESULTS = Path("benchmarks/results/continual_language.json")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    language = subparsers.add_parser("language", help="TRC2 language modules: parse commands, answer, learn, bench")
    sub = language.add_subparsers(dest="language_command", metavar="SUBCOMMAND")
    language.set_defaults(handler=lambda args: language.print_help() or 2)

    train = sub.add_parser("train", help="train the command parser and question answerer for a suite")
    train.add_argument("--suite", default="mt10")
    train.add_argument("--steps", type=int, default=1500)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=DEFAULT_MODULE)
    train.add_argument("--no-resume", action="store_true", help="ignore a checkpoint left by an interrupted run")
    train.add_argument(
        "--probe-examples", type=int, default=None, metavar="N",
        help="fit the sentence-encoder probe on N training examples per family (a quick look; default: all)",
    )  # fmt: skip
    train.add_argument(
        "--checked-masks", type=int, default=None, metavar="K",
        help="word-dropout masks per training command that the probe checks (default: CHECKED_MASKS in "
        "language/module.py, 0: fresh unchecked masks every step; docs/language.md)",
    )  # fmt: skip
    train.add_argument(
        "--probe-layers", type=int, default=None, metavar="K",
        help="top sentence-encoder layers fine-tuned with the probe (default: PROBE_TUNED_LAYERS in "
        "language/module.py; 0: a linear probe of the frozen encoder)",
    )  # fmt: skip
    train.add_argument(
        "--probe-steps", type=int, default=None, metavar="N",
        help="steps of 32 texts that tune them (default: PROBE_TUNING_STEPS in language/module.py)",
    )  # fmt: skip
    train.set_defaults(handler=_train)

    parse = sub.add_parser("parse", help="parse a command into a task and its arguments")
    parse.add_argument("text")
    parse.add_argument("--module", type=Path, default=DEFAULT_MODULE)
    parse.set_defaults(handler=_parse)

    ask = sub.add_parser("ask", help="answer a question about an event log ('at 3 reach done ; ...')")
    ask.add_argument("question")
    ask.add_argument("--log", required=True)
    ask.add_argument("--module", type=Path, default=DEFAULT_MODULE)
    ask.set_defaults(handler=_ask)

    learn = sub.add_parser(
        "learn",
        help="learn new commands or questions online from a JSON-lines stream",
        description="Surprising lines are trained on with replay and written to the hippocampal memory; "
        "consolidation replays the buffers afterwards. Bad lines are reported by number; good ones are learned.",
    )
    learn.add_argument("--stream", type=Path, required=True)
    learn.add_argument("--module", type=Path, default=DEFAULT_MODULE)
    learn.add_argument("--steps-per-example", type=int, default=8)
    learn.add_argument("--consolidate-steps", type=int, default=50)
    learn.set_defaults(handler=_learn)

    bench = sub.add_parser(
        "bench",
        help="continual-learning benchmark: TRC2 vs a same-size Transformer (naive, replay, joint) and ablations",
    )
    bench.add_argument("--orders", type=int, default=3)
    bench.add_argument("--seeds", type=int, default=3)
    bench.add_argument("--ablation-seeds", type=int, help="seeds for the trc2-no-* ablations (default: --seeds)")
    bench.add_argument("--methods", help="comma-separated subset of the methods (default: all)")
    bench.add_argument("--steps-per-task", type=int, default=200)
    bench.add_argument("--workers", type=int, default=1, help="runs in parallel (one process each)")
    bench.add_argument("--workdir", type=Path, default=Path("runs/continual_language"))
    bench.add_argument("--parser-steps", type=int, default=1500, help="0 skips the command-parsing measurement")
    bench.add_argument("--parser-seeds", type=int, default=3, help="mt10 modules trained to measure command parsing")
    bench.add_argument("--no-resume", action="store_true")
    bench.add_argument("--json", type=Path, default=DEFAULT_RESULTS)
    bench.set_defaults(handler=_bench)


def _train(args: argparse.Namespace) -> int:
    from cortico.language.module import train_module

    module = train_module(
        args.out, args.suite, args.steps, args.seed, resume=not args.no_resume,
        probe_examples=args.probe_examples,
        **({} if args.checked_masks is None else {"checked_masks": args.checked_masks}),
        **({} if args.probe_layers is None else {"probe_tuned_layers": args.probe_layers}),
        **({} if args.probe_steps is None else {"probe_steps": args.probe_steps}),
    )  # fmt: skip
    print(json.dumps(module.settings.metrics, indent=2))
    print(f"language module: {args.out}")
    return 0


def _parse(args: argparse.Namespace) -> int:
    from cortico.language.module import LanguageModule

    parsed = LanguageModule.load(args.module).parse_command(args.text)
    print(json.dumps({"task": parsed.task, "arguments": parsed.arguments, "confidence": round(parsed.confidence, 3),
                      "source": parsed.source}))  # fmt: skip
    return 0


def _ask(args: argparse.Namespace) -> int:
    from cortico.language.module import LanguageModule

    answer = LanguageModule.load(args.module).answer(args.question, args.log)
    print(json.dumps({"answer": answer.text, "query": answer.query, "confidence": round(answer.confidence, 3)}))
    return 0


def _learn(args: argparse.Namespace) -> int:
    from cortico.language.module import LanguageModule
    from cortico.language.stream_file import read_stream

    examples, errors = read_stream(args.stream)
    module = LanguageModule.load(args.module)
    report = module.learn(examples, steps_per_example=args.steps_per_example, progress=True)
    module.consolidate(args.consolidate_steps)
    module.save(args.module)
    print(f"learned from {report['trained']} of {report['examples']} lines (the others were not surprising); "
          f"new words: {', '.join(report['new_words']) or 'none'}; saved {args.module}")  # fmt: skip
    if errors:
        from cortico.cli import CommandError

        listed = "\n  ".join(str(e) for e in errors)
        raise CommandError(f"{len(errors)} line(s) of {args.stream} were skipped:\n  {listed}", exit_code=1)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from cortico.atomic import write_json_atomic
    from cortico.language.bench import (
        markdown_table,
        measure_parsing,
        measure_throughput,
        run_benchmark,
        tokenizer_directory,
        tokenizer_for,
        write_report,
    )
    from cortico.language.continual import ContinualConfig

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    config = ContinualConfig(steps_per_task=args.steps_per_task)
    result = run_benchmark(
        args.workdir,
        methods,
        args.orders,
        args.seeds,
        config,
        workers=args.workers,
        resume=not args.no_resume,
        ablation_seeds=args.ablation_seeds,
    )
    throughput = measure_throughput(0, tokenizer_for(0, tokenizer_directory(args.workdir, 0)), config)
    report = write_report(args.json, result, throughput)
    if args.parser_steps and args.parser_seeds:
        report["command_parsing"] = measure_parsing(
            args.workdir, args.parser_seeds, args.parser_steps, workers=args.workers, resume=not args.no_resume
        )
        write_json_atomic(args.json, report)
    print(markdown_table(report["summary"]))
    for method, row in report["paired_with_trc2"].items():
        print(f"trc2 - {method} over {row['pairs']} paired runs: forgetting {100 * row['forgetting_difference']:+.1f} "
              f"points (less in {row['reference_forgets_less']}), ACC {100 * row['acc_difference']:+.1f} points "
              f"(higher in {row['reference_more_accurate']})")  # fmt: skip
    for name, row in throughput["architectures"].items():
        print(f"{name}: {row['tokens_per_second']:.0f} tokens/s ({row['ratio_to_dense']:.2f}x dense)")
    if "command_parsing" in report:
        parsing = report["command_parsing"]["summary"]
        for metric, row in parsing.items():
            print(f"{metric} over {args.parser_seeds} seeds: {row['mean']:.3f} ± {row['std']:.3f}")
    print(f"results: {args.json}")
    return 0
