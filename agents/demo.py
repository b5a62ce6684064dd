"""The main job on the embedded default (``cortico demo``): the whole perceive-remember-act loop, end to end.

Stages, each resuming from what ``--out`` already holds:

1. collect expert demonstrations with Ray env workers;
2. train the dual-stream (cortical) policy briefly, its gaze model first;
3. evaluate it on held-out seeds;
4. train the language module (command parser and question answerer);
5. run the agent on a sequence of paraphrased commands while questions are asked from another thread,
   then ask about the whole session;
6. write ``report.html``: success tables, training curves, the rollout video with the gaze fixation,
   memory occupancy over time, and every question with the agent's answer and the truth.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cortico.atomic import write_json_atomic
from cortico.settings import as_saved, settings_differences

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Budgets of the demo (the defaults take about 15 minutes on a 2-core CPU; ``fast()`` about 3)."""

    tasks: tuple[str, ...] = ("button-press-topdown", "reach", "drawer-close")
    episodes_per_task: int = 8
    image_size: int = 64
    policy_steps: int = 600
    policy_samples: str = "keyframes"  # a short CPU training learns fastest on keyframe samples, unaugmented
    policy_augment: bool = False
    gaze_steps: int = 200
    batch_size: int = 8
    eval_episodes: int = 3
    keyframe_budget: int = 8
    language_steps: int = 1000
    language_probe_examples: int | None = None  # None: the sentence-encoder probe sees every training example
    language_probe_steps: int | None = None  # steps tuning the probe's encoder layers (None: the module's default)
    memory_budget: int = 160
    frame_stride: int = 2
    final_questions: int = 10
    seed: int = 0
    commands: tuple[str, ...] = field(default=())

    @classmethod
    def fast(cls) -> DemoConfig:
        """Tiny budgets: every stage runs, nothing is learned well (for tests and a first look)."""
        return cls(tasks=("button-press-topdown", "reach"), episodes_per_task=2, policy_steps=10, gaze_steps=10,
                   batch_size=4, eval_episodes=1, keyframe_budget=3, language_steps=30, language_probe_examples=200,
                   language_probe_steps=8, frame_stride=3, final_questions=5)  # fmt: skip

    def session_commands(self) -> list[str]:
        """Paraphrased commands for the agent: each task once, in the words of its held-out paraphrase."""
        from cortico.language.tasks import held_out_core

        return list(self.commands) or [f"please {held_out_core(task)}" for task in self.tasks]


@dataclass
class DemoReport:
    """Where the report is and what it says in numbers."""

    html: Path
    summary: dict[str, Any]


class Stage:
    """Prints a numbered stage header and records how long it took."""

    def __init__(self, timings: dict[str, float], total: int) -> None:
        self.timings, self.total, self.number = timings, total, 0

    def __call__(self, name: str) -> Stage:
        """Name the next stage (use as ``with stage("..."):``)."""
        self.number += 1
        self.name = name
        return self

    def __enter__(self) -> Stage:
        print(f"[{self.number}/{self.total}] {self.name}", flush=True)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = time.perf_counter() - self.started


def run_demo(out: Path, config: DemoConfig | None = None, *, workers: int = 2, fresh: bool = False) -> DemoReport:
    """Run every stage into ``out`` and write ``out/report.html``."""
    import shutil

    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.policies.training import TrainConfig, train_policy
    from cortico.ray_runtime import RayOptions

    config = config or DemoConfig()
    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "demo_config.json"
    settings = as_saved(asdict(config))
    differing = settings_differences(json.loads(saved.read_text()), settings) if saved.exists() else []
    if differing:
        raise ValueError(f"{out} holds a demo with other settings ({'; '.join(differing)}); pass --fresh or "
                         f"another --out")  # fmt: skip
    write_json_atomic(saved, settings)
    timings: dict[str, float] = {}
    stage = Stage(timings, 6)
    data, run = out / "demos", out / "policy"

    with stage(f"collect {config.episodes_per_task} expert demos per task on {len(config.tasks)} tasks "
               f"with {workers} Ray workers"):  # fmt: skip
        collection = CollectionConfig(episodes_per_task=config.episodes_per_task, image_size=config.image_size)
        collect_into_cache(data, list(config.tasks), collection, elsewhere="pass --fresh", workers=workers,
                           ray=RayOptions())  # fmt: skip

    with stage(f"train the cortical policy ({config.policy_steps} steps, gaze model {config.gaze_steps} steps)"):
        train = TrainConfig(policy="cortical", steps=config.policy_steps, batch_size=config.batch_size,
                            sample_steps=config.policy_samples, augment=config.policy_augment,
                            gaze_steps=config.gaze_steps, seed=config.seed,
                            checkpoint_every=max(config.policy_steps // 2, 1),
                            log_every=max(config.policy_steps // 50, 1))  # fmt: skip
        train_policy(data, run, train, resume=run.exists())

    with stage(f"evaluate on held-out seeds ({config.eval_episodes} episodes per task)"):
        evaluation = _evaluate(run, config, out / "eval")

    with stage(f"train the language module ({config.language_steps} steps)"):
        language_dir = _language_module(out / "language", config)

    with stage("run the agent on paraphrased commands while questions are asked"):
        session = _agent_session(out, run, language_dir, config)

    with stage("write the report"):
        from cortico.agents.report import write_report

        html = write_report(out, config, evaluation, session, timings)
    summary = {
        "evaluation": evaluation["summary"],
        "agent": session["summary"],
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    write_json_atomic(out / "summary.json", summary)
    return DemoReport(html, summary)


def _evaluate(run: Path, config: DemoConfig, folder: Path) -> dict[str, Any]:
    from cortico.policies.evaluation import evaluate_policy, write_report
    from cortico.policies.training import load_policy

    report_path = folder / "report.json"
    if not report_path.exists():
        policy = load_policy(run)
        report = evaluate_policy(policy, list(config.tasks), config.eval_episodes, seed=config.seed,
                                 keyframe_budget=config.keyframe_budget)  # fmt: skip
        write_report(report, report_path, title="cortical policy, held-out seeds")
    saved = json.loads(report_path.read_text())
    return {"summary": saved["summary"], "per_task": saved["tasks"], "plot": report_path.with_suffix(".png")}


def _language_module(folder: Path, config: DemoConfig) -> Path:
    from cortico.language.module import is_current_module, train_module

    if not is_current_module(folder):  # none yet, or one an earlier version trained
        steps = {} if config.language_probe_steps is None else {"probe_steps": config.language_probe_steps}
        train_module(folder, steps=config.language_steps, seed=config.seed, evaluate=False,
                     probe_examples=config.language_probe_examples, **steps)  # fmt: skip
    return folder


def _agent_session(out: Path, run: Path, language: Path, config: DemoConfig) -> dict[str, Any]:
    from cortico.agents.recording import RolloutRecorder
    from cortico.agents.session import (
        AgentSettings,
        QuestionPlan,
        answer_accuracy,
        ask_scored,
        build_agent,
        run_with_questions,
    )

    cameras = ("front", "left_shoulder", "right_shoulder", "wrist")
    recorder = RolloutRecorder(cameras, stride=2, max_frames=600)
    settings = AgentSettings(checkpoint=str(run), language=str(language), memory_budget=config.memory_budget,
                             frame_stride=config.frame_stride, seed=config.seed, video_cameras=cameras,
                             allow_untrained=False)  # fmt: skip
    agent = build_agent(settings, on_frame=recorder)
    plan, rng = QuestionPlan(seed=config.seed), np.random.default_rng(config.seed)
    scored = []
    try:
        for command in config.session_commands():
            result, answers = run_with_questions(agent, command, plan=plan, rng=rng, every=1.0,
                                                 max_keyframes=config.keyframe_budget)  # fmt: skip
            print(f"  [{result.status}] {command!r}: {result.message}", flush=True)
            scored += answers
        for _ in range(config.final_questions):  # the whole session, after the last command
            if (item := ask_scored(agent, plan, rng)) is not None:
                scored.append(item)
        unclear = agent.run("")  # bad input gets an answer, not motion
    finally:
        agent.close()
    video = recorder.write(out / "rollout.gif", fps=10) if recorder.frames else None
    results = [r.to_dict() for r in agent.history if r is not unclear]
    timings = agent.timings
    summary = {
        "commands": len(results),
        "successes": sum(r["success"] for r in results),
        "questions": answer_accuracy(scored),
        "frames_remembered": agent.frames,
        "frame_interval_ms_median": _median_ms(timings.frame_intervals),
        "decision_ms_median": _median_ms(timings.decisions),
        "memory": agent.memory.stats(),
        "empty_command": unclear.message,
    }
    session = {"summary": summary, "results": results, "video": video, "memory_trace": agent.memory_trace,
               "answers": [{**asdict(s.answer), "kind": s.kind, "truth": s.truth, "during": s.during,
                            "correct": s.correct} for s in scored]}  # fmt: skip
    write_json_atomic(out / "session.json", {k: v for k, v in session.items() if k != "video"})
    return session


def _median_ms(values: list[float]) -> float | None:
    return float(np.median(values) * 1000) if values else None
