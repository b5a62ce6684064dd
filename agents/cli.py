"""Commands of the agents folder: ``run`` (the agent) and ``demo`` (the main job)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    run = subparsers.add_parser(
        "run",
        help="the agent: carry out language commands, answer questions about what it saw",
        description="Parse a language command, carry it out (perceive -> remember -> act) in the embedded "
        "simulator, RLBench or on a ROS arm, and answer questions from memory while it acts. Without "
        "--checkpoint the embedded simulator is driven by the scripted expert.",
    )
    run.add_argument("command", nargs="*", help='one or more commands, e.g. "open the drawer" "press the button"')
    run.add_argument("--checkpoint", help="trained policy (a run directory or a checkpoint folder)")
    run.add_argument("--language", help="trained language module (default: runs/language or runs/demo/language)")
    run.add_argument("--backend", default="metaworld", choices=("metaworld", "rlbench", "ros"))
    run.add_argument("--ask", action="append", default=[], metavar="QUESTION", help="ask while it acts (repeatable)")
    run.add_argument("--ask-every", type=float, default=1.0, help="seconds between questions (default 1)")
    run.add_argument("--interactive", action="store_true", help="read commands and questions (ending in ?) from stdin")
    run.add_argument("--video", help="write a video of every camera with the gaze fixation (.mp4 or .gif)")
    run.add_argument("--max-keyframes", type=int, default=15)
    run.add_argument("--seed", type=int, default=0, help="first episode seed")
    run.add_argument("--allow-untrained", action="store_true", help="try tasks the policy never learned")
    run.add_argument("--memory", default="cortico", help="memory policy (cortico, curvature, uniform, fifo, merge)")
    run.add_argument("--memory-budget", type=int, default=160, help="memory tokens (4 = one clear frame)")
    run.add_argument("--image-size", type=int, help="simulator camera size (default: the policy's, else 96)")
    run.add_argument("--frame-stride", type=int, default=1, help="remember every n-th low-level frame")
    run.add_argument("--profile", help="ros backend: robot profile (YAML file or packaged name)")
    run.add_argument("--transport", default="ros1", choices=("ros1", "rosbridge"))
    run.add_argument("--host", default="localhost", help="rosbridge host")
    run.add_argument("--port", type=int, default=9090, help="rosbridge port")
    run.add_argument("--dry-run", action="store_true", help="ros backend: decide and log every command, send none")
    run.add_argument("--json", help="write the session (results and answers) as JSON")
    run.set_defaults(handler=_run)

    demo = subparsers.add_parser(
        "demo",
        help="the main job: demos with Ray, train, evaluate, run the agent with questions, write a report",
        description="On the embedded simulator: collect expert demos with Ray workers, train the dual-stream "
        "policy briefly, evaluate it, train the language module, run the agent on a sequence of commands while "
        "questions are asked, and write runs/demo/report.html. Every stage resumes from --out.",
    )
    demo.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    demo.add_argument("--fast", action="store_true", help="a ~3-minute version (tiny budgets; used by the tests)")
    demo.add_argument("--workers", type=int, default=2, help="Ray workers for collection (default 2)")
    demo.add_argument("--fresh", action="store_true", help="discard earlier results in --out")
    demo.set_defaults(handler=_demo)


def _settings(args: argparse.Namespace):  # noqa: ANN202 - AgentSettings, imported lazily
    from cortico.agents.session import AgentSettings, default_language_module

    language = args.language or default_language_module()
    return AgentSettings(
        backend=args.backend, checkpoint=args.checkpoint, language=str(language) if language else None,
        memory=args.memory, memory_budget=args.memory_budget, image_size=args.image_size,
        frame_stride=args.frame_stride, allow_untrained=args.allow_untrained, seed=args.seed,
        profile=args.profile, transport=args.transport, host=args.host, port=args.port, dry_run=args.dry_run,
        video_cameras=("front", "left_shoulder", "right_shoulder", "wrist") if args.video else (),
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from cortico.agents.recording import RolloutRecorder
    from cortico.agents.session import build_agent, run_with_questions
    from cortico.atomic import write_json_atomic

    if not args.command and not args.interactive:
        raise ValueError('give a command (e.g. cortico run "open the drawer") or --interactive')
    settings = _settings(args)
    recorder = RolloutRecorder(settings.video_cameras) if args.video else None
    agent = build_agent(settings, on_frame=recorder)
    if settings.language is None:
        print("no language module found: commands are matched to the nearest known instruction and questions "
              "cannot be answered (train one with `cortico language train` or run `cortico demo`)")  # fmt: skip
    try:
        if args.interactive:
            _interactive(agent, args)
        for command in args.command:
            result, answers = run_with_questions(
                agent, command, list(args.ask), every=args.ask_every, max_keyframes=args.max_keyframes
            )
            args.ask = []  # the questions go with the first command
            _print_result(result)
            for answer in answers:
                _print_answer(answer)
    finally:
        agent.close()
    if recorder is not None and recorder.frames:
        print(f"video: {recorder.write(args.video)}")
    if args.json:
        session = {"results": [r.to_dict() for r in agent.history],
                   "answers": [a.__dict__ for a in agent.answers]}  # fmt: skip
        write_json_atomic(args.json, session)
        print(f"session: {args.json}")
    return 0 if all(r.status == "success" for r in agent.history) else 1


def _print_result(result) -> None:  # noqa: ANN001
    print(f"[{result.status}] {result.command!r} -> {result.message}")


def _print_answer(answer) -> None:  # noqa: ANN001
    span = answer.evidence_span
    evidence = f"evidence {span[0]:.1f}-{span[1]:.1f} s" if span else "no evidence"
    asked = f"t={answer.asked_at:.1f} s" if answer.asked_at is not None else "before anything was seen"
    print(f"  Q ({asked}): {answer.question}\n  A: {answer.text} (confidence {answer.confidence:.2f}, {evidence})")


def _interactive(agent, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Read commands and questions from stdin until 'quit' or the end of input.

    A line ending in '?' is a question (answered at once, even while acting); ``teach <command> = <task>``
    teaches the language module a command; anything else is a command, queued and carried out in order.
    """
    import queue

    commands: queue.Queue[str | None] = queue.Queue()

    def worker() -> None:
        while (command := commands.get()) is not None:
            try:
                _print_result(agent.run(command, max_keyframes=args.max_keyframes))
            except Exception as error:  # noqa: BLE001 - report and keep the session alive
                print(f"[error] {command!r}: {error}")
            sys.stdout.flush()

    thread = threading.Thread(target=worker, name="agent-commands", daemon=True)
    thread.start()
    print("commands run in order; lines ending in '?' are questions; 'teach <command> = <task>' teaches a "
          "command; 'quit' ends the session", flush=True)  # fmt: skip
    for line in sys.stdin:
        text = line.strip()
        if not text:
            continue
        if text.lower() in ("quit", "exit"):
            break
        if text.lower().startswith("teach ") and "=" in text:
            command, _, task = text[len("teach ") :].partition("=")
            try:
                report = agent.teach(command.strip(), task.strip())
                print(f"  learned {command.strip()!r} -> {task.strip()} (new words: {report['new_words']})")
            except ValueError as error:
                print(f"  cannot learn that: {error}")
        elif text.endswith("?"):
            try:
                _print_answer(agent.ask(text))
            except ValueError as error:
                print(f"  cannot answer: {error}")
        else:
            commands.put(text)
        sys.stdout.flush()
    commands.put(None)
    thread.join()


def _demo(args: argparse.Namespace) -> int:
    from cortico.agents.demo import DemoConfig, run_demo

    config = DemoConfig.fast() if args.fast else DemoConfig()
    report = run_demo(Path(args.out), config, workers=args.workers, fresh=args.fresh)
    print(json.dumps(report.summary, indent=2))
    print(f"report: {report.html}")
    return 0
