"""The perceive-remember-act agent on the real simulator: commands, concurrent questions, sessions, bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from cortico.agents.agent import Agent
from cortico.agents.perceiver import Perceiver
from cortico.agents.scenes import SimulatorScenes
from cortico.agents.session import AgentSettings, QuestionPlan, _connect_arm, answer_accuracy, run_with_questions
from cortico.language.module import LanguageModule, NearestInstruction
from cortico.memory.factory import make_memory
from cortico.policies.expert import SimulatorExpert

TASKS = ("drawer-open", "button-press-topdown", "reach", "drawer-close", "window-open")


@pytest.fixture(scope="module")
def text_encoder():  # noqa: ANN201
    from cortico.perception.text_encoder import TextEncoder

    return TextEncoder()


def make_agent(language, text_encoder, policy=None, **kwargs) -> Agent:  # noqa: ANN001
    scenes = SimulatorScenes(cameras=["front", "wrist"], image_size=48)
    memory = make_memory("cortico", 160, text_encoder=text_encoder)
    return Agent(scenes, Perceiver(), memory, policy or SimulatorExpert(), language, **kwargs)


@pytest.fixture
def answering_module(module_dir: Path, text_encoder) -> LanguageModule:  # noqa: ANN001
    """The tiny TRC2 module; its parses always defer to the nearest instruction (it is barely trained)."""
    module = LanguageModule.load(module_dir, text_encoder=text_encoder)
    module.settings.confidence_threshold = 1.01
    return module


def test_paraphrased_command_is_carried_out_and_every_frame_is_remembered(text_encoder) -> None:  # noqa: ANN001
    agent = make_agent(NearestInstruction(TASKS, text_encoder), text_encoder)
    try:
        result = agent.run("could you pull the drawer open for me", max_keyframes=12)
    finally:
        agent.close()
    assert result.status == "success" and result.success and result.moved
    assert result.task == "drawer-open" and result.instruction == "open the drawer"
    assert result.parser == "nearest-instruction" and result.confidence > 0.5
    assert result.stop_reason == "success" and 1 <= result.keyframes <= 12
    # every low-level step went to memory, not only the keyframes
    assert agent.frames == result.frames > 10 * result.keyframes
    assert len(agent.timings.frame_intervals) == agent.frames - result.episodes
    stats = agent.memory.stats()
    assert stats["frames_seen"] == agent.frames and stats["tokens"] <= 160
    assert result.session_start == pytest.approx(1.0) and result.session_end > result.session_start


def test_questions_while_acting_see_memory_up_to_now_and_do_not_stall_the_loop(
    answering_module: LanguageModule,
    text_encoder,  # noqa: ANN001
) -> None:
    agent = make_agent(answering_module, text_encoder)
    try:
        plan, rng = QuestionPlan(), np.random.default_rng(0)
        result, scored = run_with_questions(agent, "open the drawer", plan=plan, rng=rng, every=0.05, max_keyframes=12)
        quiet = list(agent.timings.frame_intervals)
        agent.timings.frame_intervals.clear()
        second, more = run_with_questions(agent, "press the button from the top", plan=plan, rng=rng, every=0.05)
    finally:
        agent.close()
    assert result.success and second.success
    scored += more
    assert len(scored) >= 4, "questions were asked while the agent acted"
    during_second = [s for s in scored if s.during == "press the button from the top"]
    assert during_second
    for item in scored:
        answer = item.answer
        assert answer.text and 0 <= answer.confidence <= 1
        assert answer.evidence_span is not None and answer.evidence_span[1] <= answer.asked_at
        # what memory recalled agrees with the agent's own log of the commands so far
        tasks = [label for _, label, _ in answer.recalled]
        assert tasks and tasks[0] == "drawer-open"
    assert [label for _, label, _ in during_second[-1].answer.recalled] == ["drawer-open", "button-press-topdown"]
    summary = answer_accuracy(scored)
    assert summary["questions"] == len(scored) and len(summary["wrong"]) == sum(not s.correct for s in scored)
    assert all(w["answer"] != w["truth"] and w["query"] for w in summary["wrong"])
    # the control loop kept going while questions were answered: no frame waited on an answer
    busy = agent.timings.frame_intervals
    assert max(busy) < 1.0, f"a frame waited {max(busy):.2f} s"
    assert np.median(busy) < 5 * np.median(quiet) + 0.05


def test_a_two_command_session_answers_about_the_first_after_the_second(
    answering_module: LanguageModule,
    text_encoder,  # noqa: ANN001
) -> None:
    agent = make_agent(answering_module, text_encoder)
    try:
        first = agent.run("open the drawer", max_keyframes=12)
        second = agent.run("press the button from the top", max_keyframes=12)
    finally:
        agent.close()
    assert first.success and second.success and second.session_start > first.session_end
    names, times, done = agent.session_log()
    assert names == ["drawer-open", "button-press-topdown"] and done == [True, True]
    assert times[0] == 1 and times[1] > times[0]
    evidence = agent.snapshot()
    recalled = evidence.episodes()
    assert [e.label for e in recalled] == names and all(e.success for e in recalled)
    events = answering_module.events(evidence)
    assert [(round(t), task, ok) for t, task, ok in events] == list(zip(times, names, [True, True]))
    answer = agent.ask("what did the robot do first?")
    assert answer.recalled[0][1] == "drawer-open" and answer.asked_at == agent.session_time
    assert answer.query == "first" and answer.text == "drawer-open"


def test_memory_knows_a_command_succeeded_when_the_frame_stride_skips_the_success_step(
    answering_module: LanguageModule,
    text_encoder,  # noqa: ANN001
) -> None:
    agent = make_agent(answering_module, text_encoder, frame_stride=10_000)  # no per-step frame is remembered
    try:
        result = agent.run("open the drawer", max_keyframes=12)
    finally:
        agent.close()
    assert result.success
    (recalled,) = agent.snapshot().episodes()
    assert recalled.label == "drawer-open" and recalled.success


def test_bad_input_gets_a_clear_answer_and_no_motion(answering_module: LanguageModule, text_encoder) -> None:  # noqa: ANN001
    agent = make_agent(answering_module, text_encoder)
    try:
        early = agent.ask("what did the robot do first?")
        assert early.text == "I have not seen anything yet." and early.evidence_span is None
        with pytest.raises(ValueError, match="question is empty"):
            agent.ask("   ")
        empty = agent.run("  ")
        assert empty.status == "clarify" and "empty" in empty.message and not empty.moved
        nonsense = agent.run("zxqv blorp fnarg")
        assert nonsense.status == "clarify" and "rephrase" in nonsense.message and nonsense.task is None
        assert agent.frames == 0, "nothing moved, nothing was seen"
        with pytest.raises(ValueError, match="max_keyframes"):
            agent.run("open the drawer", max_keyframes=0)
    finally:
        agent.close()


class _TaskListPolicy(SimulatorExpert):
    """The scripted expert declaring the tasks it was trained on, like a trained policy's config does."""

    class config:  # noqa: N801
        tasks = ("drawer-open",)


def test_untrained_tasks_are_refused_unless_allowed(text_encoder) -> None:  # noqa: ANN001
    agent = make_agent(NearestInstruction(TASKS, text_encoder), text_encoder, policy=_TaskListPolicy())
    try:
        refused = agent.run("press the button from the top")
        assert refused.status == "refused" and "never learned button-press-topdown" in refused.message
        assert agent.frames == 0
        tried = agent.run("press the button from the top", allow_untrained=True, max_keyframes=12)
        assert tried.moved and tried.success
    finally:
        agent.close()


def test_a_single_scene_refuses_other_tasks(text_encoder) -> None:  # noqa: ANN001
    from cortico.envs.metaworld_backend import MetaWorldEnv

    env = MetaWorldEnv("reach", cameras=["front"], image_size=48)
    agent = Agent(env, Perceiver(), make_memory("fifo", 40), SimulatorExpert(), NearestInstruction(TASKS, text_encoder))
    try:
        result = agent.run("open the drawer")
        assert result.status == "refused" and "built for 'reach'" in result.message
    finally:
        agent.close()


def test_a_checkpoint_whose_cameras_the_robot_lacks_is_refused() -> None:
    settings = AgentSettings(backend="ros", profile="sim_sawyer")
    with pytest.raises(ValueError, match="the checkpoint reads cameras"):
        _connect_arm(settings, ("front", "belly_camera"))
    with pytest.raises(ValueError, match="needs a robot profile"):
        _connect_arm(AgentSettings(backend="ros"), None)


def test_ask_is_safe_from_many_threads_at_once(answering_module: LanguageModule, text_encoder) -> None:  # noqa: ANN001
    agent = make_agent(answering_module, text_encoder)
    try:
        agent.run("open the drawer", max_keyframes=12)
        answers, errors = [], []

        def ask() -> None:
            try:
                answers.append(agent.ask("what did the robot do last?"))
            except Exception as error:  # noqa: BLE001 - collected for the assertion
                errors.append(error)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        agent.close()
    assert not errors and len(answers) == 4
    assert len({a.text for a in answers}) == 1, "the same memory gives the same answer"


def test_cli_runs_commands_with_questions_and_writes_video_and_session(tmp_path: Path, module_dir: Path) -> None:
    from cortico.cli import main

    video, session = tmp_path / "run.gif", tmp_path / "session.json"
    status = main(["run", "open the drawer", "--language", str(module_dir), "--image-size", "48",
                   "--ask", "what did the robot do first?", "--video", str(video), "--json", str(session)])  # fmt: skip
    assert status == 0
    saved = json.loads(session.read_text())
    assert saved["results"][0]["status"] == "success" and saved["results"][0]["task"] == "drawer-open"
    assert len(saved["answers"]) == 1 and saved["answers"][0]["question"] == "what did the robot do first?"
    assert video.stat().st_size > 1000
    assert main(["run"]) == 2  # neither a command nor --interactive


def test_interactive_mode_runs_commands_in_order_and_answers_questions(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import io
    import sys

    from cortico.cli import main

    lines = ("what did the robot do first?\nplease open the drawer\n\n   ?\nteach do a flip = backflip\n"
             "quit\nnot read after quit\n")  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["run", "--interactive", "--language", str(module_dir), "--image-size", "48"]) == 0
    out = capsys.readouterr().out
    assert "A: I have not seen anything yet." in out
    assert "[success] 'please open the drawer'" in out
    assert "cannot answer: the question is empty" in out
    assert "cannot learn that: unknown task 'backflip'" in out
    assert "not read after quit" not in out


def test_a_taught_command_is_understood_afterwards(module_dir: Path, tmp_path: Path, text_encoder) -> None:  # noqa: ANN001
    import shutil

    shutil.copytree(module_dir, tmp_path / "module")
    module = LanguageModule.load(tmp_path / "module", text_encoder=text_encoder)
    module.settings.confidence_threshold = 0.0  # trust the model's own parse
    agent = make_agent(module, text_encoder, clarify_below=0.0)
    try:
        report = agent.teach("zorp the blicket", "drawer-open")
        assert report["trained"] == 1 and "zorp" in report["new_words"]
        result = agent.run("zorp the blicket", max_keyframes=12)
        assert result.task == "drawer-open" and result.parser == "trc2" and result.success
        with pytest.raises(ValueError, match="unknown task"):
            agent.teach("do a flip", "backflip")
    finally:
        agent.close()


def test_a_seed_the_scripted_expert_fails_on_is_a_failed_command_not_a_crash(text_encoder) -> None:  # noqa: ANN001
    from cortico.envs.task_catalog import TASKS
    from cortico.policies.expert import ExpertKeyframePolicy

    with pytest.raises(RuntimeError, match="fails peg-insert-side with seed 2001"):
        ExpertKeyframePolicy("peg-insert-side", 2001)
    agent = make_agent(NearestInstruction(("peg-insert-side", "reach"), text_encoder), text_encoder)
    try:
        result = agent.run(TASKS["peg-insert-side"].instructions[0], seed=2001, max_keyframes=3)
    finally:
        agent.close()
    assert result.moved and result.status == "failure" and result.keyframes == 3
    assert "keyframe budget (3) spent" in result.message


def test_a_slow_command_moves_the_arm_at_half_speed(text_encoder) -> None:  # noqa: ANN001
    agent = make_agent(NearestInstruction(TASKS, text_encoder), text_encoder)
    try:
        normal = agent.run("open the drawer", seed=5, max_keyframes=12)
        slow = agent.run("open the drawer slowly", seed=5, max_keyframes=12)
        servo = agent.scenes.get("drawer-open").servo
    finally:
        agent.close()
    assert normal.success and slow.success and slow.speed_applied
    assert normal.arguments["speed"] == "normal" and slow.arguments["speed"] == "slow"
    assert slow.frames > 1.15 * normal.frames, (slow.frames, normal.frames)  # travel at half speed; settling as before
    assert servo.speed == 1.0, "the controller's speed is restored after the command"
