"""Hippocampal memory: events, consolidation into notes, retrieval by a text question."""

from __future__ import annotations

import numpy as np
import pytest

from cortico.memory.hippocampus import CorticoMemory, HippocampusConfig

from .test_buffers import record


@pytest.fixture(scope="module")
def text_encoder():
    from cortico.perception.text_encoder import TextEncoder

    return TextEncoder()


def three_tasks(rng):
    tasks = ["open the drawer", "press the button from above", "pick up the puck and place it at the goal"]
    frames, index = [], 0
    for number, instruction in enumerate(tasks):
        x = rng.normal(size=16)
        for step in range(40):
            x = x + 0.02 * rng.normal(size=16)
            frames.append(record(index, x, instruction=instruction, task_number=number, gripper_open=float(step < 20),
                                 success=step > 35))  # fmt: skip
            index += 1
    return tasks, frames


def test_events_become_notes_with_what_the_agent_observed(text_encoder):
    tasks, frames = three_tasks(np.random.default_rng(0))
    memory = CorticoMemory(80, text_encoder=text_encoder)
    for frame in frames:
        memory.write(frame)
    assert memory.events_closed >= 2
    first = memory.notes[0]
    assert first.facts["instructions"] == [tasks[0]] and first.facts["gripper_changes"] == 1 and first.facts["success"]
    for note in memory.notes:
        sims = [float(a.vectors[0] @ b.vectors[0]) for a in note.key_frames for b in note.key_frames if a is not b]
        assert all(s < HippocampusConfig().key_frame_similarity for s in sims)
    assert memory.stats()["tokens"] <= 80


def test_a_text_question_retrieves_its_event(text_encoder):
    tasks, frames = three_tasks(np.random.default_rng(1))
    memory = CorticoMemory(200, text_encoder=text_encoder)
    for frame in frames:
        memory.write(frame)
    question = text_encoder.embed("what was in the drawer when you opened it?")[0].numpy()
    evidence = memory.query(frames[-1].time, question)
    retrieved = evidence.detail["retrieved_notes"][0]
    assert evidence.notes[retrieved].facts["instructions"] == [tasks[0]]
    assert evidence.path in ("fast", "recall")
    exact = memory.query(frames[-1].time, text_encoder.embed(tasks[1])[0].numpy())
    assert exact.path == "fast" and exact.notes[exact.detail["retrieved_notes"][0]].facts["instructions"] == [tasks[1]]


def test_long_streams_consolidate_within_budget(text_encoder):
    rng = np.random.default_rng(2)
    memory = CorticoMemory(40, text_encoder=text_encoder)
    x = rng.normal(size=16)
    for i in range(3000):
        if i % 100 == 0:
            x = rng.normal(size=16)
        x = x + 0.05 * rng.normal(size=16)
        memory.write(record(i, x, instruction=f"task {i // 100}", task_number=i // 100))
        assert memory.used <= 40
    merged = [n.facts.get("merged", 1) for n in memory.notes]
    assert max(merged) > 1, "old notes must merge instead of disappearing"
    numbers = sorted({t for n in memory.notes for t in n.facts["task_numbers"]})
    assert numbers[0] == 0, "the consolidated notes still cover the first task"


def test_evidence_recalls_one_episode_per_command_across_notes_and_frames(text_encoder):
    from cortico.memory.records import Evidence, MemoryNote

    rng = np.random.default_rng(3)
    tasks, frames = three_tasks(rng)
    memory = CorticoMemory(80, text_encoder=text_encoder, config=HippocampusConfig(max_event_frames=15))
    for frame in frames:
        memory.write(frame)
    episodes = memory.query(frames[-1].time).episodes()
    # several notes per command (events of <= 15 frames), one episode per command number
    assert [e.number for e in episodes] == [0, 1, 2]
    assert [e.label for e in episodes] == tasks and all(e.success for e in episodes)
    assert episodes[0].start == pytest.approx(frames[0].time) and episodes[0].end < episodes[1].start
    # notes written without command numbers fall back to one episode per instruction
    bare = Evidence(5.0, [], [MemoryNote(1.0, 2.0, np.zeros(4, np.float32), {"instructions": ["a", "b"]})])
    assert [(e.number, e.label) for e in bare.episodes()] == [(None, "a"), (None, "b")]


def test_short_term_frames_use_the_tokens_the_notes_leave_free(text_encoder):
    rng = np.random.default_rng(5)
    memory = CorticoMemory(40, text_encoder=text_encoder, config=HippocampusConfig(max_event_frames=10_000))
    fixed_share = memory.budget - memory.long_budget
    x = rng.normal(size=16)
    for i in range(600):
        x = x + 0.05 * rng.normal(size=16)  # one long, smooth command: one event, a note at most
        memory.write(record(i, x, instruction="open the drawer", task_number=0))
        assert memory.used <= 40 and memory.short.used + memory.stats()["long_term_tokens"] <= 40
    assert memory.stats()["long_term_tokens"] < memory.long_budget
    assert memory.short.used > fixed_share  # borrowed from the long-term share


def test_a_note_keeps_where_the_gripper_last_closed_and_the_frame_its_event_began_with():
    rng = np.random.default_rng(5)
    frames, x = [], rng.normal(size=16)
    for step in range(60):  # one command: close at step 10 over (0.1, 0.7), reopen at 30, close again at 45
        x = x + 0.3 * rng.normal(size=16)  # a restless scene: many distinct key-frame candidates
        closed = 10 <= step < 30 or step >= 45
        frames.append(record(step, x, instruction="pick up the puck", task_number=0, gripper_open=float(not closed),
                             gripper_position=(0.01 * step - 0.2, 0.7, 0.1)))  # fmt: skip
    frames.append(record(60, rng.normal(size=16), instruction="open the drawer", task_number=1, gripper_open=1.0))
    memory = CorticoMemory(200, config=HippocampusConfig(separation_similarity=-1.0, max_key_frames=3))
    for frame in frames:
        memory.write(frame)
    (note,) = memory.notes
    assert note.facts["close_position"] == pytest.approx((0.01 * 45 - 0.2, 0.7, 0.1))  # the last close, not the first
    assert note.key_frames[0].index == 0  # replacements never take the event's first frame
    memory.long_budget = note.cost  # one token short with the running note's: a later key frame goes, not the first
    memory._fit_long_term()
    assert [k.index for k in memory.notes[0].key_frames] == [0, note.key_frames[1].index]


def test_a_query_reports_the_running_event_within_the_budget():
    rng = np.random.default_rng(6)
    memory = CorticoMemory(20)
    x = rng.normal(size=16)
    for step in range(30):  # one long, still command that succeeds only at its last frame
        x = x + 0.001 * rng.normal(size=16)
        memory.write(record(step, x, instruction="press the button", task_number=0, success=step == 29))
        assert memory.used <= 20
    evidence = memory.query(memory.short._last_time)
    running = evidence.notes[-1]
    assert running.facts["task_numbers"] == [0] and running.facts["success"] and running.key_frames == ()
    assert running.end == pytest.approx(0.05 * 29)
    assert evidence.tokens <= 20
    assert [e.success for e in evidence.episodes()] == [True]
