"""The question generator on a hand-built stream: every answer checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cortico.memory.qa import (
    LEVELS,
    MODES,
    Question,
    QuestionGenerator,
    balance_across_streams,
    gripper_closes,
    load_questions,
    save_questions,
)
from cortico.memory.streams import Stream, StreamEpisode


def answers(questions):
    return {q.template: q.options[q.answer] for q in questions}


def test_answers_are_correct_by_construction(stream):
    generator = QuestionGenerator(stream, 0, seed=0, objects=["drawer", "button", "puck", "door", "window"])
    at_32 = answers(generator.at(32))  # during drawer-close, frame 32 (two frames into the task)
    assert at_32["object_previous_task"] == "puck"
    assert at_32["object_two_tasks_ago"] == "button"
    assert at_32["object_now"] == "drawer"
    assert at_32["object_region_previous_start"] == "near right"  # the puck at frame 20
    assert at_32["gripper_region_last_close"] == "near left"  # frame 24
    assert at_32["gripper_region_now"] == "far right"
    assert at_32["tasks_finished"] == "3"
    assert at_32["task_stage"] == "just started"  # (32 - 30) / (38 - 30) = 0.25
    assert gripper_closes(stream, 0, 40) == [24] and gripper_closes(stream, 25, 40) == []
    assert at_32["gripper_next"] == "keep its grip while moving"  # the next keyframe (35) does not change the grip
    assert at_32["object_region_at_end"] == "far right"
    at_23 = answers(generator.at(23))
    assert at_23["gripper_next"] == "close on something"  # keyframe 24 closes the gripper
    assert at_23["gripper_direction_next"] == "sideways"  # to frame 24: dx = -0.4 dominates dy = -0.3, dz = -0.15
    assert "tasks_finished" not in at_23  # counts are asked from the fourth task on
    at_39 = answers(generator.at(39))
    assert at_39["task_stage"] == "finished" and at_39["gripper_next"] == "nothing more, the task is done"


def extended(stream: Stream) -> Stream:
    """The fixture followed by door-open (frames 40-49) and window-open (50-59), both far right, no grasp."""
    n, more = len(stream), 20

    def grow(values: np.ndarray, fill) -> np.ndarray:  # noqa: ANN001
        return np.concatenate([values, np.broadcast_to(fill, (more, *values.shape[1:]))])

    return Stream(
        images=grow(stream.images, 0), times=np.arange(n + more) * 0.1,
        episode=np.concatenate([stream.episode, np.repeat([4, 5], 10)]),
        gripper_open=grow(stream.gripper_open, 1.0), gripper=grow(stream.gripper, [0.2, 0.8, 0.2]),
        object=grow(stream.object, [0.1, 0.7, 0.0]), goal=grow(stream.goal, [0.0, 0.9, 0.1]),
        episodes=[*stream.episodes, StreamEpisode("door-open", "open the door", 4, 40, 50, [44, 49], 48),
                  StreamEpisode("window-open", "open the window", 5, 50, 60, [54, 59], 58)],
    )  # fmt: skip


def test_anchored_backward_questions_reach_further_back(stream):
    """Two to six tasks back: the object's region at a task's start and the gripper's at its last close."""
    objects = ["drawer", "button", "puck", "door", "window"]
    words = {"two": 2, "three": 3, "four": 4, "five": 5}
    long = extended(stream)
    seen_back = set()
    for seed in range(12):
        generator = QuestionGenerator(long, 0, seed=seed, objects=objects, older_tasks=True)
        at_55 = {q.template: q for q in generator.at(55)}
        start = at_55["object_region_start_k_ago"]
        back = next(words[w] for w in words if f" {w} tasks ago" in start.question)
        # the object at the start of drawer-close, pick-place, button-press, drawer-open
        assert start.options[start.answer] == {2: "far right", 3: "near right", 4: "near left", 5: "far right"}[back]
        assert start.evidence == pytest.approx((long.times[long.episodes[5 - back].start],
                                                long.times[long.episodes[5 - back].start + 2]))  # fmt: skip
        seen_back.add(back)
        close = at_55["gripper_region_close_k_ago"]  # only pick-place (three tasks ago) closed the gripper
        assert "three tasks ago" in close.question and close.options[close.answer] == "near left"
        assert close.evidence == pytest.approx((2.4, 2.5))  # the close and the frame after it
    assert seen_back == {2, 3, 4, 5}
    default = answers(QuestionGenerator(long, 0, seed=0, objects=objects).at(55))  # asked by default
    assert {"object_region_start_k_ago", "gripper_region_close_k_ago"} <= set(default)
    earlier_set = answers(QuestionGenerator(long, 0, seed=0, objects=objects, older_tasks=False).at(55))
    assert not {"object_region_start_k_ago", "gripper_region_close_k_ago"} & set(earlier_set)
    at_32 = answers(QuestionGenerator(stream, 0, seed=0, objects=objects, older_tasks=True).at(32))
    assert "gripper_region_close_k_ago" not in at_32  # the only grasp was one task before: not "two or more"
    assert at_32["object_region_start_k_ago"] in ("near left", "far right")  # button-press or drawer-open


def test_object_regions_are_asked_only_when_the_object_is_clearly_inside_a_quarter(stream):
    objects = ["drawer", "button", "puck", "door", "window"]
    stream.object[20:29] = [0.01, 0.5, 0.0]  # the puck starts 1 cm right of the centre line: no picture settles it
    at_32 = answers(QuestionGenerator(stream, 0, seed=0, objects=objects).at(32))
    assert "object_region_previous_start" not in at_32 and at_32["object_previous_task"] == "puck"
    stream.object[39] = [0.1, 0.66, 0.0]  # the drawer ends 1 cm beyond the near/far line
    assert "object_region_at_end" not in answers(QuestionGenerator(stream, 0, seed=0, objects=objects).at(32))
    stream.object[20:29] = [0.04, 0.5, 0.0]  # 4 cm: clearly near right
    assert answers(QuestionGenerator(stream, 0, seed=0, objects=objects).at(32))["object_region_previous_start"] == (
        "near right"
    )


def test_every_cell_is_covered_and_the_format_round_trips(stream, tmp_path):
    generator = QuestionGenerator(stream, 0, seed=0, objects=["drawer", "button", "puck", "door", "window"])
    questions = [q for frame in range(20, 40) for q in generator.at(frame)]
    assert {(q.level, q.mode) for q in questions} == {(lv, m) for lv in LEVELS for m in MODES}
    for q in questions:
        assert len(q.options) == 4 == len(set(q.options)) and 0 <= q.answer < 4
        assert q.evidence[0] <= q.evidence[1] and (q.mode == "forward" or q.evidence[1] <= q.time + 1e-9)
    save_questions(tmp_path / "qa.jsonl", questions)
    assert load_questions(tmp_path / "qa.jsonl") == questions
    (tmp_path / "bad.jsonl").write_text((tmp_path / "qa.jsonl").read_text() + "{not json\n")
    with pytest.raises(ValueError, match=f"bad.jsonl:{len(questions) + 1}"):
        load_questions(tmp_path / "bad.jsonl")


def test_generation_is_deterministic_for_a_seed(stream):
    a = QuestionGenerator(stream, 0, seed=3).sample(15, min_frame=20)
    b = QuestionGenerator(stream, 0, seed=3).sample(15, min_frame=20)
    c = QuestionGenerator(stream, 0, seed=4).sample(15, min_frame=20)
    assert a == b and a != c


def test_balancing_across_streams_removes_a_set_wide_answer_prior():
    def question(stream: int, k: int, answer: str) -> Question:
        options = ("near left", "near right", "far left", "far right")
        return Question(f"s{stream}-f{k}-t", stream, "perception", "backward", "t", k, float(k), (0.0, 0.0), "where?",
                        options, options.index(answer))  # fmt: skip

    # each stream alone is balanced enough (2 vs 1), but "near right" is the answer 8 times out of 12 overall
    per_stream = [[question(i, 0, "near right"), question(i, 1, "near right"), question(i, 2, "far left")]
                  for i in range(4)]  # fmt: skip
    kept = balance_across_streams(per_stream, seed=0)
    answers = [q.options[q.answer] for questions in kept for q in questions]
    assert answers.count("far left") == 4 and answers.count("near right") == 5  # at most 1.25 x the rarest
    assert all(q.stream == i for i, questions in enumerate(kept) for q in questions)
