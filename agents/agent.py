"""The perceive-remember-act agent: a language command in, the task carried out, questions answered meanwhile.

``Agent.run(command)`` parses the command (TRC2 language module, or the nearest catalogue instruction),
refuses or asks for clarification when it should, then loops perceive -> remember -> act: every low-level
frame the simulator steps through goes to memory (on backends without per-step hooks, every keyframe
observation), and the policy picks keyframes until success, failure or the budget. ``Agent.ask(question)``
may be called from any thread while ``run`` acts: it snapshots memory under a short lock and answers
outside it, so the control loop never waits for the language model. One agent keeps one memory across
commands, on one session clock, so later questions can refer to earlier commands.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from cortico.agents.perceiver import Perceiver
from cortico.agents.scenes import Scenes, as_scenes
from cortico.envs.contract import ManipulationEnv, Observation
from cortico.envs.task_catalog import TASKS
from cortico.memory.records import Evidence

logger = logging.getLogger(__name__)

SESSION_START = 1.0  # session seconds of the first frame (event logs count from 1)
SPEED_FRACTIONS = {"slow": 0.5, "normal": 1.0, "fast": 1.0}  # of the controller's speed ("fast" is its top)
EPISODE_GAP = 1.0  # session seconds between two episodes


@dataclass
class RunResult:
    """What became of one command.

    ``status`` is ``success`` / ``failure`` (the agent acted), ``clarify`` (the command was empty or
    unclear: nothing moved) or ``refused`` (the policy never learned the task: nothing moved).
    """

    command: str
    status: str
    message: str
    task: str | None = None
    instruction: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    parser: str = ""
    episodes: int = 0
    successes: int = 0
    keyframes: int = 0
    frames: int = 0
    seconds: float = 0.0
    session_start: float | None = None
    session_end: float | None = None
    stop_reason: str = ""
    decision_ms: list[float] = field(default_factory=list)
    speed_applied: bool = False  # the backend's controller honoured the command's speed

    @property
    def success(self) -> bool:
        """Every requested repetition succeeded."""
        return self.status == "success"

    @property
    def moved(self) -> bool:
        """The robot acted on this command."""
        return self.episodes > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {**asdict(self), "success": self.success}


@dataclass(frozen=True)
class AgentAnswer:
    """An answer from memory: the text, the model's confidence, when it was asked, and the evidence span.

    ``evidence_span`` is the (first, last) session time of what the memory held for the answer; None when
    nothing had been seen yet. ``recalled`` lists the commands memory still knew of, as
    ``(start seconds, task, succeeded)``: what the answer was based on; ``query`` is what the language
    module read the question as (e.g. ``"when drawer-open"``).
    """

    question: str
    text: str
    confidence: float
    asked_at: float | None
    evidence_span: tuple[float, float] | None
    recalled: tuple[tuple[float, str | None, bool], ...] = ()
    seconds: float = 0.0
    query: str = ""


@dataclass
class LoopTimings:
    """Wall-clock timings of the control loop (seconds), for the loop-rate and jitter measurements."""

    frame_intervals: list[float] = field(default_factory=list)  # between consecutive frames of an episode
    perceive_remember: list[float] = field(default_factory=list)  # encoding + memory write per frame
    decisions: list[float] = field(default_factory=list)  # policy.act per keyframe


class Agent:
    """One robot, one memory, one policy, one language module (see the module doc).

    Args:
        env: an environment (a robot; a simulator scene serves only its own task) or :class:`Scenes`
            (e.g. ``SimulatorScenes()``, one scene per task).
        perception: what the agent perceives per frame (memory frames, gaze).
        memory: a streaming memory (``write``, ``query``, ``stats``), e.g. ``make_memory("cortico", 160)``.
        policy: ``act(observation, instruction) -> KeyframeAction``; a policy with ``begin_episode(task, seed)``
            is told about every new episode (the scripted expert needs it).
        language: parses commands (``parse_command``) and answers questions (``answer``); a
            :class:`~cortico.language.module.NearestInstruction` parses but cannot answer.
        clarify_below: parse confidence under which the agent asks for clarification instead of acting.
        allow_untrained: act on tasks the policy never learned (otherwise refuse with a message).
        frame_stride: remember every n-th low-level frame.
        seed: the first episode seed (each episode uses the next one).
        on_frame: called after every remembered frame with ``(agent, observation, frame_facts)``.
        video_cameras: cameras rendered at every step besides those perception needs (for ``on_frame``
            consumers such as :class:`~cortico.agents.recording.RolloutRecorder`).
    """

    def __init__(
        self,
        env: ManipulationEnv | Scenes,
        perception: Perceiver,
        memory: Any,
        policy: Any,
        language: Any,
        *,
        clarify_below: float = 0.35,
        allow_untrained: bool = False,
        frame_stride: int = 1,
        seed: int = 0,
        on_frame: Callable[[Agent, Observation, dict[str, Any]], None] | None = None,
        video_cameras: tuple[str, ...] = (),
    ) -> None:
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        self.scenes = as_scenes(env)
        self.perception = perception
        self.memory = memory
        self.policy = policy
        self.language = language
        self.clarify_below = clarify_below
        self.allow_untrained = allow_untrained
        self.frame_stride = frame_stride
        self.next_seed = seed
        self.on_frame = on_frame
        self.video_cameras = tuple(video_cameras)
        self.history: list[RunResult] = []
        self.answers: list[AgentAnswer] = []
        self.timings = LoopTimings()
        self.memory_trace: list[dict[str, Any]] = []  # memory occupancy after every frame
        self._memory_lock = threading.Lock()  # held only while writing a frame or taking a snapshot
        self._language_lock = threading.Lock()  # the language model serves one call at a time
        self._run_lock = threading.Lock()  # one command at a time
        self._frames = 0
        self._current: RunResult | None = None  # the command acting now
        self._current_success = False
        self._last_time: float | None = None
        self._clock_offset = SESSION_START
        self._last_frame_wall: float | None = None

    # ------------------------------------------------------------------------------------------ commands
    @property
    def trained_tasks(self) -> tuple[str, ...]:
        """Tasks the policy learned (empty: the policy does not say, e.g. the scripted expert)."""
        config = getattr(self.policy, "config", None)
        return tuple(getattr(config, "tasks", ()) or ())

    def run(
        self, command: str, max_keyframes: int = 15, *, seed: int | None = None, allow_untrained: bool | None = None
    ) -> RunResult:
        """Carry out one language command (see the module doc); returns what happened and why it stopped."""
        if max_keyframes < 1:
            raise ValueError(f"max_keyframes must be >= 1, got {max_keyframes}")
        allow = self.allow_untrained if allow_untrained is None else allow_untrained
        with self._run_lock:
            try:
                result = self._run(command, max_keyframes, seed, allow)
            finally:
                with self._memory_lock:
                    if self._current is not None:
                        self.history.append(self._current)
                    self._current, self._current_success = None, False
            if not result.moved:
                self.history.append(result)
        logger.info("%s -> %s: %s", command, result.status, result.message)
        return result

    def _run(self, command: str, max_keyframes: int, seed: int | None, allow_untrained: bool) -> RunResult:
        text = command.strip() if isinstance(command, str) else ""
        if not text:
            return RunResult(str(command), "clarify", "The command is empty: say what to do, e.g. 'open the drawer'.")
        with self._language_lock:
            parsed = self.language.parse_command(text)
        result = RunResult(text, "clarify", "", parsed.task, None, dict(parsed.arguments), parsed.confidence,
                           parsed.source)  # fmt: skip
        if parsed.confidence < self.clarify_below:
            example = TASKS[parsed.task].instructions[0]
            result.message = (
                f"I am not sure what '{text}' asks for: the closest task I know is {parsed.task} "
                f"(confidence {parsed.confidence:.2f}, below {self.clarify_below:.2f}). Please rephrase, "
                f"e.g. '{example}'."
            )
            result.task = None
            return result
        trained = self.trained_tasks
        if trained and parsed.task not in trained and not allow_untrained:
            result.status = "refused"
            result.message = (
                f"The policy never learned {parsed.task} (it knows {', '.join(trained)}); nothing moved. "
                "Allow untrained tasks to try anyway."
            )
            return result
        try:
            env = self.scenes.get(parsed.task)
        except ValueError as error:
            result.status, result.message = "refused", str(error)
            return result
        result.instruction = TASKS[parsed.task].instructions[0] if parsed.task in TASKS else text
        repeat = int(parsed.arguments.get("repeat", 1))
        started, first_frame = time.perf_counter(), self._frames
        number = len([r for r in self.history if r.moved])  # commands that moved the robot before this one
        servo = getattr(env, "servo", None)  # the simulator's keyframe controller
        if servo is not None:
            factor = SPEED_FRACTIONS.get(str(parsed.arguments.get("speed", "normal")), 1.0)
            env.servo = replace(servo, speed=servo.speed * factor)
            result.speed_applied = True
        try:
            for _ in range(repeat):
                episode_seed = self.next_seed if seed is None else seed + result.episodes
                self.next_seed = max(self.next_seed, episode_seed) + 1
                success, stop = self._episode(env, result, episode_seed, number, max_keyframes)
                result.episodes += 1
                result.successes += int(success)
                result.stop_reason = stop
                if not success:
                    break
        finally:
            if servo is not None:
                env.servo = servo
        result.seconds = time.perf_counter() - started
        result.frames = self._frames - first_frame
        result.status = "success" if result.successes == repeat else "failure"
        times = f"{result.successes}/{repeat} times" if repeat > 1 else ""
        result.message = (
            f"{'Done' if result.success else 'Failed'}: {result.instruction} {times}".strip()
            + f" ({result.keyframes} keyframes, {result.seconds:.1f} s; {result.stop_reason})."
        )
        return result

    def _episode(
        self, env: ManipulationEnv, result: RunResult, seed: int, number: int, max_keyframes: int
    ) -> tuple[bool, str]:
        """One episode: reset, then act until success, failure or the keyframe budget."""
        assert result.task is not None and result.instruction is not None
        observation = env.reset(seed=seed, instruction=result.instruction)
        begin = getattr(self.policy, "begin_episode", None)
        if begin is not None:
            begin(result.task, seed)
        if self._last_time is not None:
            self._clock_offset = self._last_time + EPISODE_GAP - float(observation.time)
        if result.session_start is None:
            result.session_start = self._clock_offset + float(observation.time)
            with self._memory_lock:
                self._current = result
        facts = {"instruction": result.instruction, "task": result.task, "task_number": number}
        self._last_frame_wall = None  # frame intervals are timed within an episode, not across resets
        self._remember(observation, facts, success=False)
        hook = self._step_hook(env, facts) if _accepts_on_step(env) else None
        stop = f"keyframe budget ({max_keyframes}) spent"
        for _ in range(max_keyframes):
            started = time.perf_counter()
            action = self.policy.act(observation, result.instruction)
            elapsed = time.perf_counter() - started
            self.timings.decisions.append(elapsed)
            result.decision_ms.append(1000 * elapsed)
            outcome = env.execute(action, on_step=hook) if hook is not None else env.execute(action)
            result.keyframes += 1
            observation = outcome.observation
            if hook is None or outcome.success:  # the hook may have skipped the step success came at (stride)
                self._remember(observation, facts, success=outcome.success)
            if outcome.success:
                stop = "success"
                break
            if getattr(env, "episode_over", False):
                stop = "episode step budget spent"
                break
        result.session_end = self._last_time
        return stop == "success", stop

    def _step_hook(self, env: ManipulationEnv, facts: dict[str, Any]) -> Callable[[Any], None]:
        """The per-step callback: observe the cameras perception needs and remember every n-th frame."""
        cameras = tuple(dict.fromkeys(self.perception.cameras + self.video_cameras))
        partial = "cameras" in inspect.signature(env.observe).parameters
        counter = [0]

        def on_step(environment: Any) -> None:
            counter[0] += 1
            if counter[0] % self.frame_stride:
                return
            observation = environment.observe(cameras=cameras) if partial else environment.observe()
            self._remember(observation, facts, success=bool(getattr(environment, "success", False)))

        return on_step

    def _remember(self, observation: Observation, facts: dict[str, Any], success: bool) -> None:
        """Perceive one frame and write it to memory (the only place the control loop takes the lock)."""
        now = time.perf_counter()
        if self._last_frame_wall is not None:
            self.timings.frame_intervals.append(now - self._last_frame_wall)
        session_time = self._clock_offset + float(observation.time)
        if self._last_time is not None and session_time <= self._last_time:
            session_time = self._last_time + 1e-3  # a backend whose clock did not advance between frames
        frame_facts = {**facts, "gripper_open": float(observation.gripper_open), "success": success,
                       "task_time": float(observation.time),
                       "gripper_position": tuple(float(v) for v in observation.gripper_pose[:3])}  # fmt: skip
        frame = self.perception.frame(observation, self._frames, session_time, frame_facts)
        with self._memory_lock:
            self.memory.write(frame)
            self._last_time = session_time
            self._frames += 1
            self._current_success = self._current_success or success
            stats = self.memory.stats()
        self.memory_trace.append({"time": session_time, **_occupancy(stats)})
        self.timings.perceive_remember.append(time.perf_counter() - now)
        self._last_frame_wall = time.perf_counter()
        if self.on_frame is not None:
            self.on_frame(self, observation, frame_facts)

    def teach(self, command: str, task: str, speed: str = "normal", repeat: int = 1, steps: int = 60) -> dict[str, Any]:
        """Teach the language module what a command means (online learning with replay, no forgetting).

        For a command the agent asked to have clarified: afterwards it parses to ``task``.
        """
        from cortico.language.tasks import Example

        if not hasattr(self.language, "learn"):
            raise ValueError("this agent has no trained language module to teach (cortico language train)")
        if task not in self.language.tasks:
            raise ValueError(f"unknown task {task!r}; the language module knows {', '.join(self.language.tasks)}")
        if not isinstance(command, str) or not command.strip():
            raise ValueError("the command to teach is empty")
        with self._language_lock:
            return self.language.learn([Example(command.strip(), f"{task} {speed} {repeat}")], steps_per_example=steps)

    # ------------------------------------------------------------------------------------------ questions
    @property
    def session_time(self) -> float | None:
        """Session time of the newest remembered frame (None before the first)."""
        return self._last_time

    @property
    def frames(self) -> int:
        """Frames remembered so far in this session."""
        return self._frames

    def session_log(self) -> tuple[list[str], list[int], list[bool]]:
        """What the agent did, from its own log (not its memory): tasks, start seconds, success so far.

        Commands that moved the robot, in order, the one acting now included; the ground truth that
        answers from memory are scored against.
        """
        with self._memory_lock:
            runs = [r for r in self.history if r.moved] + ([self._current] if self._current is not None else [])
            done = [r.successes > 0 for r in runs]
            if self._current is not None:
                done[-1] = done[-1] or self._current_success
        return [str(r.task) for r in runs], [int(round(r.session_start or 0.0)) for r in runs], done

    def snapshot(self) -> Evidence | None:
        """What memory holds now (None before the first frame); safe to call while ``run`` acts."""
        with self._memory_lock:
            if self._last_time is None:
                return None
            return self.memory.query(self._last_time)

    def ask(self, question: str) -> AgentAnswer:
        """Answer a question from memory up to now; may be called from another thread while ``run`` acts."""
        if not isinstance(question, str) or not question.strip().rstrip("?").strip():
            raise ValueError("the question is empty: ask about what the robot did, e.g. 'what did the robot do first?'")
        started = time.perf_counter()
        evidence = self.snapshot()
        if evidence is None:
            answer = AgentAnswer(question, "I have not seen anything yet.", 1.0, None, None)
        elif not hasattr(self.language, "answer"):
            text = "I cannot answer questions without a trained language module (cortico language train)."
            answer = AgentAnswer(question, text, 0.0, evidence.time, _span(evidence))
        else:
            recalled = tuple((e.start, e.label, e.success) for e in evidence.episodes())
            with self._language_lock:
                reply = self.language.answer(question, evidence)
            answer = AgentAnswer(question, reply.text, reply.confidence, evidence.time, _span(evidence),
                                 recalled, time.perf_counter() - started, reply.query)  # fmt: skip
        self.answers.append(answer)
        return answer

    def close(self) -> None:
        """Close the environments."""
        self.scenes.close()


def _accepts_on_step(env: ManipulationEnv) -> bool:
    try:
        return "on_step" in inspect.signature(env.execute).parameters
    except (TypeError, ValueError):
        return False


def _occupancy(stats: dict[str, Any]) -> dict[str, Any]:
    """Clear / fuzzy / discarded counts and tokens from a memory's stats."""
    seen = stats.get("frames_seen", 0)
    clear, fuzzy = stats.get("clear_admitted", 0), stats.get("fuzzy_admitted", 0)
    return {"tokens": stats.get("tokens", 0), "budget": stats.get("budget_tokens", 0), "frames": seen,
            "clear": clear, "fuzzy": fuzzy, "discarded": seen - clear - fuzzy,
            "notes": stats.get("notes", 0)}  # fmt: skip


def _span(evidence: Evidence) -> tuple[float, float] | None:
    times = [i.time for i in evidence.items] + [t for n in evidence.notes for t in (n.start, n.end)]
    return (float(np.min(times)), float(np.max(times))) if times else None
