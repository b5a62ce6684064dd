"""The agent end to end: loop rate on one core, jitter with and without questions, success and QA accuracy.

    .venv/bin/python benchmarks/agent_loop.py --language runs/language    # -> benchmarks/results/agent_loop.json

1. **Loop rate**: one command, the process pinned to one core (torch and Mesa on one thread); frames per
   second of perceive (render the memory camera, encode) + remember (memory write) + the simulator step,
   and the policy's decision time per keyframe (the cortical policy when ``--checkpoint`` is given, else
   the scripted expert, whose decisions are free).
2. **Jitter**: the same command and seed twice, back to back: quiet, then with a question every
   ``--ask-every`` seconds from another thread. Frame intervals (median, p95, p99, max) side by side.
3. **Held-out sessions**: sessions of commands in held-out paraphrases (never in the language module's
   training data), with scored questions asked while the agent acts and about the whole session after it.
   The scripted expert acts, so success measures parsing and the loop, and accuracy measures memory and the
   language module, not the policy (the policy's own success is in ``policy_suite.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", type=Path, help="trained language module (default: train one into --workdir)")
    parser.add_argument("--language-steps", type=int, default=1500, help="steps when the module is trained here")
    parser.add_argument("--checkpoint", help="a trained policy for the loop-rate decision timing")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--ask-every", type=float, default=0.05, help="seconds between questions in the jitter run")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--commands-per-session", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("runs/agent_bench"))
    parser.add_argument("--json", type=Path, default=RESULTS / "agent_loop.json")
    return parser.parse_args()


def percentiles_ms(values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {}
    array = np.asarray(values) * 1000
    return {"frames": len(values), "median": float(np.median(array)), "p95": float(np.percentile(array, 95)),
            "p99": float(np.percentile(array, 99)), "max": float(array.max())}  # fmt: skip


def main() -> int:
    args = parse_args()
    os.environ["LP_NUM_THREADS"] = "1"
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from cortico.agents.session import (
        AgentSettings,
        QuestionPlan,
        answer_accuracy,
        ask_scored,
        build_agent,
        run_with_questions,
    )
    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.task_catalog import SUITES
    from cortico.language.module import is_current_module, train_module
    from cortico.language.tasks import held_out_core

    language = args.language
    if language is None:
        language = args.workdir / "language"
        if not is_current_module(language):
            train_module(language, steps=args.language_steps, seed=args.seed)
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "software": software_versions(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "one_core": True,
    }

    # 1 + 2: loop rate and jitter on one command, quiet and with questions
    settings = AgentSettings(checkpoint=args.checkpoint, language=str(language), image_size=args.image_size,
                             seed=args.seed)  # fmt: skip
    command = "please pick up the puck and put it on the goal"  # a long episode: many frames to time
    agent = build_agent(settings)
    try:
        quiet = agent.run(command, seed=args.seed)
        quiet_intervals = list(agent.timings.frame_intervals)
        perceive = list(agent.timings.perceive_remember)
        decisions = list(agent.timings.decisions)
        agent.timings.frame_intervals.clear()
        questions = ["what did the robot do first", "what did the robot do last", "did the robot pick-place"] * 500
        busy, answers = run_with_questions(agent, command, questions, every=args.ask_every, ask_leftover=False,
                                           seed=args.seed)  # fmt: skip
        busy_intervals = list(agent.timings.frame_intervals)
    finally:
        agent.close()
    results["loop"] = {
        "policy": "cortical" if args.checkpoint else "scripted expert",
        "frames": len(perceive),
        "frames_per_second": 1.0 / float(np.median(quiet_intervals)) if quiet_intervals else None,
        "perceive_remember_ms": percentiles_ms(perceive),
        "decision_ms": percentiles_ms(decisions),
        "success": quiet.success,
    }
    results["jitter"] = {
        "quiet_frame_interval_ms": percentiles_ms(quiet_intervals),
        "with_questions_frame_interval_ms": percentiles_ms(busy_intervals),
        "questions_answered_during_the_command": len(answers),
        "answer_ms": percentiles_ms([a.seconds for a in answers if a.seconds]),
        "both_succeeded": quiet.success and busy.success,
    }
    print(results["loop"], results["jitter"], sep="\n")

    # 3: held-out sessions, scored questions during and after
    tasks = list(SUITES["mt10"])
    rng = np.random.default_rng(args.seed)
    sessions, scored = [], []
    for session_number in range(args.sessions):
        chosen = rng.choice(tasks, size=args.commands_per_session, replace=False)
        commands = [f"{rng.choice(['please', 'could you', 'now', ''])} {held_out_core(t)}".strip() for t in chosen]
        agent = build_agent(AgentSettings(language=str(language), image_size=64, frame_stride=2,
                                          seed=1000 * (session_number + 1)))  # fmt: skip
        plan = QuestionPlan(seed=session_number)
        session_scored, parsed = [], []
        started = time.perf_counter()
        try:
            for command, task in zip(commands, chosen):
                result, items = run_with_questions(agent, command, plan=plan, rng=rng, every=1.0)
                parsed.append({"command": command, "task": str(task), "parsed": result.task,
                               "status": result.status, "keyframes": result.keyframes})  # fmt: skip
                session_scored += items
            for _ in range(8):
                if (item := ask_scored(agent, plan, rng)) is not None:
                    item.during = "(after the session)"
                    session_scored.append(item)
        finally:
            agent.close()
        sessions.append({"commands": parsed, "seconds": time.perf_counter() - started,
                         "questions": answer_accuracy(session_scored)})  # fmt: skip
        scored += session_scored
        print(f"session {session_number}: {sessions[-1]['questions']}")
    commands = [c for s in sessions for c in s["commands"]]
    results["held_out_sessions"] = {
        "sessions": sessions,
        "parse_accuracy": float(np.mean([c["parsed"] == c["task"] for c in commands])),
        "success_rate": float(np.mean([c["status"] == "success" for c in commands])),  # of the task it parsed
        "commanded_task_success_rate": float(
            np.mean([c["status"] == "success" and c["parsed"] == c["task"] for c in commands])
        ),  # fmt: skip
        "questions_during": answer_accuracy([s for s in scored if s.during != "(after the session)"]),
        "questions_after": answer_accuracy([s for s in scored if s.during == "(after the session)"]),
        "questions_all": answer_accuracy(scored),
    }
    write_json_atomic(args.json, results)
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
