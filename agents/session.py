"""Assembling an agent from saved parts, running commands while questions come in, and scoring the answers.

Used by ``cortico run``, ``cortico demo`` and the agent benchmark, so the three build and question the
agent the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cortico.agents.agent import Agent, AgentAnswer, RunResult
from cortico.agents.perceiver import WRIST_CAMERA, Perceiver
from cortico.agents.scenes import RobotScene, SimulatorScenes
from cortico.envs.task_catalog import SUITES
from cortico.language.tasks import answer_query, question_text

BACKENDS = ("metaworld", "rlbench", "ros")


@dataclass
class AgentSettings:
    """How to build an agent (the ``cortico run`` options).

    Attributes:
        backend: ``metaworld`` (embedded), ``rlbench`` (needs CoppeliaSim) or ``ros`` (a robot profile).
        checkpoint: a trained policy; None drives the embedded simulator with the scripted expert.
        language: a trained language module folder; None parses commands by the nearest catalogue
            instruction (MiniLM) and cannot answer questions.
        memory: memory policy name; memory_budget its token budget.
        image_size: camera size for simulator backends (default: the policy's, else 96).
        frame_stride: remember every n-th low-level frame.
        clarify_below, allow_untrained, seed: see :class:`Agent`.
        profile, transport, host, port, dry_run, audit: the ROS backend (see ``cortico deploy run``).
        video_cameras: cameras rendered at every step for a video.
    """

    backend: str = "metaworld"
    checkpoint: str | None = None
    language: str | None = None
    memory: str = "cortico"
    memory_budget: int = 160
    image_size: int | None = None
    frame_stride: int = 1
    clarify_below: float = 0.35
    allow_untrained: bool = False
    seed: int = 0
    profile: str | None = None
    transport: str = "ros1"
    host: str = "localhost"
    port: int = 9090
    dry_run: bool = False
    audit: str = "runs/agent/audit.jsonl"
    video_cameras: tuple[str, ...] = ()


def build_agent(settings: AgentSettings, on_frame: Any = None) -> Agent:
    """An agent from saved parts; a wrong backend, a missing part or mismatched cameras fail clearly."""
    from cortico.memory.factory import make_memory
    from cortico.perception.text_encoder import TextEncoder

    if settings.backend not in BACKENDS:
        raise ValueError(f"unknown backend {settings.backend!r}; available: {', '.join(BACKENDS)}")
    policy = _load_policy(settings)
    cameras = tuple(getattr(getattr(policy, "config", None), "cameras", ())) or None
    text_encoder = TextEncoder()
    language = _load_language(settings, policy, text_encoder)
    env = _make_env(settings, policy, cameras)
    memory_camera = next((c for c in (cameras or ("front",)) if c != WRIST_CAMERA), "front")
    gaze = getattr(policy, "gaze", None) if getattr(getattr(policy, "config", None), "dynamic_stream", False) else None
    perception = Perceiver(camera=memory_camera, gaze=gaze, text_encoder=text_encoder)
    memory = make_memory(settings.memory, settings.memory_budget, text_encoder=text_encoder)
    video = tuple(c for c in settings.video_cameras if cameras is None or c in cameras)  # those the scene renders
    return Agent(env, perception, memory, policy, language, clarify_below=settings.clarify_below,
                 allow_untrained=settings.allow_untrained, frame_stride=settings.frame_stride, seed=settings.seed,
                 on_frame=on_frame, video_cameras=video)  # fmt: skip


def _load_policy(settings: AgentSettings) -> Any:
    if settings.checkpoint:
        from cortico.policies.training import load_policy

        return load_policy(settings.checkpoint)
    if settings.backend != "metaworld" and not _simulated_arm(settings):
        raise ValueError(
            f"the {settings.backend} backend needs a trained policy (--checkpoint RUN); the scripted expert "
            "exists only in the embedded simulator (and behind `cortico deploy sim-arm`)"
        )
    from cortico.policies.expert import SimulatorExpert

    return SimulatorExpert()


def _simulated_arm(settings: AgentSettings) -> bool:
    """The ros backend with a simulated arm's profile (the scripted expert can drive it)."""
    from cortico.deploy.profile import load_profile

    return settings.backend == "ros" and bool(settings.profile) and load_profile(settings.profile).simulated


def _load_language(settings: AgentSettings, policy: Any, text_encoder: Any) -> Any:
    from cortico.language.module import LanguageModule, NearestInstruction

    if settings.language:
        return LanguageModule.load(settings.language, text_encoder=text_encoder)
    tasks = tuple(getattr(getattr(policy, "config", None), "tasks", ())) or SUITES["mt10"]
    return NearestInstruction(tasks, text_encoder)


def _make_env(settings: AgentSettings, policy: Any, cameras: tuple[str, ...] | None) -> Any:
    if settings.backend == "ros":
        return RobotScene(_connect_arm(settings, cameras))
    size = settings.image_size or getattr(getattr(policy, "config", None), "image_size", None) or 96
    kwargs: dict[str, Any] = {"image_size": size}
    if cameras:
        kwargs["cameras"] = list(cameras)
    return SimulatorScenes(settings.backend, **kwargs)


def _connect_arm(settings: AgentSettings, cameras: tuple[str, ...] | None) -> Any:
    from cortico.deploy.profile import load_profile
    from cortico.deploy.ros_arm import RosArm
    from cortico.deploy.transport import TRANSPORTS

    if not settings.profile:
        raise ValueError("the ros backend needs a robot profile (--profile FILE or a packaged profile name)")
    profile = load_profile(settings.profile)
    profile_cameras = set(profile.cameras) if isinstance(profile.cameras, dict) else set(profile.cameras)
    if cameras and not set(cameras) <= profile_cameras:
        raise ValueError(
            f"the checkpoint reads cameras {list(cameras)} but the profile {profile.name!r} has "
            f"{sorted(profile_cameras)}; train on the robot's cameras or add them to the profile"
        )
    transport_class = TRANSPORTS.get(settings.transport)
    transport = (
        transport_class(host=settings.host, port=settings.port)
        if settings.transport == "rosbridge"
        else transport_class()
    )
    return RosArm(profile, transport, audit_path=settings.audit, dry_run=settings.dry_run)


# ---------------------------------------------------------------------------------------------- questions
@dataclass
class ScoredAnswer:
    """A question asked during a session, the agent's answer, and the truth from the agent's own log."""

    answer: AgentAnswer
    kind: str
    truth: str
    during: str  # the command running when it was asked ("" between commands)

    @property
    def correct(self) -> bool:
        """Exact match of the answer with the truth."""
        return self.answer.text.strip() == self.truth


@dataclass
class QuestionPlan:
    """Which questions to ask about a session: kinds in turn, tasks drawn with a seeded generator.

    With ``held_out`` the questions are worded as the language module never saw in training (each kind's
    held-out template, each task's held-out catalogue paraphrase); otherwise in the canonical wording.
    """

    kinds: tuple[str, ...] = ("first", "last", "did", "count", "succeeded", "when", "after")
    seed: int = 0
    held_out: bool = True
    _turn: int = field(default=0, repr=False)

    def next(self, agent: Agent, rng: np.random.Generator) -> tuple[str, str, str] | None:
        """``(kind, question, truth)`` about what the agent has done so far, or None before anything moved."""
        names, times, done = agent.session_log()
        if not names:
            return None
        for _ in range(len(self.kinds)):
            kind = self.kinds[self._turn % len(self.kinds)]
            self._turn += 1
            unique = [n for n in names if names.count(n) == 1]
            asked = None
            if kind == "did":
                known = tuple(getattr(agent.language, "tasks", ())) or tuple(names)
                asked = str(rng.choice(known))
            elif kind in ("succeeded", "when"):
                if not unique:
                    continue
                asked = str(rng.choice(unique))
            elif kind == "after":
                candidates = [n for n in unique if names.index(n) < len(names) - 1]
                if not candidates:
                    continue
                asked = str(rng.choice(candidates))
            question = question_text(kind, asked, rng, "test") if self.held_out else question_text(kind, asked)
            return kind, question, answer_query(kind, asked, names, times, done)
        return None


def ask_scored(agent: Agent, plan: QuestionPlan, rng: np.random.Generator, during: str = "") -> ScoredAnswer | None:
    """Ask the plan's next question now and score it against the agent's log at the same moment."""
    drawn = plan.next(agent, rng)
    if drawn is None:
        return None
    kind, question, truth = drawn
    return ScoredAnswer(agent.ask(question), kind, truth, during)


def run_with_questions(
    agent: Agent,
    command: str,
    questions: list[str] | None = None,
    *,
    plan: QuestionPlan | None = None,
    rng: np.random.Generator | None = None,
    every: float = 1.0,
    ask_leftover: bool = True,
    **run_kwargs: Any,
) -> tuple[RunResult, list[AgentAnswer | ScoredAnswer]]:
    """Run ``command`` in a worker thread while this thread asks questions every ``every`` seconds.

    ``questions`` are asked in order (those left when the command ends are asked after it, unless
    ``ask_leftover`` is False); with a ``plan`` instead, scored questions are drawn from the agent's log
    until the command ends. An error in the command is raised here.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = agent.run(command, **run_kwargs)
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name="agent-run", daemon=True)
    worker.start()
    pending = list(questions or [])
    answers: list[AgentAnswer | ScoredAnswer] = []
    rng = rng or np.random.default_rng(0)
    started_frames = agent.frames
    try:
        while worker.is_alive():
            worker.join(timeout=every)
            if not worker.is_alive() or agent.frames == started_frames:
                continue  # nothing of this command seen yet
            if pending:
                answers.append(agent.ask(pending.pop(0)))
            elif plan is not None and (scored := ask_scored(agent, plan, rng, during=command)) is not None:
                answers.append(scored)
    finally:
        worker.join()  # never leave the command running behind an error
    if "error" in outcome:
        raise outcome["error"]
    if ask_leftover:
        answers += [agent.ask(q) for q in pending]
    return outcome["result"], answers


def answer_accuracy(scored: list[ScoredAnswer]) -> dict[str, Any]:
    """Exact-match accuracy overall and per question kind, and each wrong answer with what it was read as."""
    if not scored:
        return {"questions": 0, "accuracy": None, "per_kind": {}, "wrong": []}
    kinds: dict[str, list[bool]] = {}
    for item in scored:
        kinds.setdefault(item.kind, []).append(item.correct)
    return {
        "questions": len(scored),
        "accuracy": float(np.mean([s.correct for s in scored])),
        "per_kind": {k: {"questions": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(kinds.items())},
        "wrong": [
            {"question": s.answer.question, "query": s.answer.query, "answer": s.answer.text, "truth": s.truth}
            for s in scored
            if not s.correct
        ],
    }


LANGUAGE_MODULE_PLACES = (Path("runs/language"), Path("runs/demo/language"))


def default_language_module() -> Path | None:
    """The language module ``cortico language train`` or ``cortico demo`` left, when there is one."""
    return next((p for p in LANGUAGE_MODULE_PLACES if (p / "module.json").is_file()), None)
