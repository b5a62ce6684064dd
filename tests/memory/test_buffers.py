"""Memory policies on synthetic embedding streams: the budget, the curvature signal, routing, causality."""

from __future__ import annotations

import numpy as np
import pytest

from cortico.memory.buffers import CurvatureConfig, CurvatureMemory, CurvatureScore
from cortico.memory.factory import MEMORIES, make_memory
from cortico.memory.records import CLEAR, FrameRecord, MemoryInputError


def record(index: int, vector: np.ndarray, time: float | None = None, **facts) -> FrameRecord:
    e = (vector / np.linalg.norm(vector)).astype(np.float32)
    return FrameRecord(index, 0.05 * index if time is None else time, e, np.repeat(e[None], 4, 0), facts)


def synthetic(n: int, kind: str, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=dim)
    other = rng.normal(size=dim)
    for i in range(n):
        if kind == "identical":
            v = x
        elif kind == "alternating":
            v = x if i % 2 else other
        else:
            if i % 500 == 0:
                x = rng.normal(size=dim)
            x = x + 0.05 * rng.normal(size=dim)
            v = x
        yield record(i, v, instruction=f"task {i // 500}", gripper_open=float((i // 40) % 2), task_number=i // 500)


@pytest.mark.parametrize("name", MEMORIES.available())
@pytest.mark.parametrize("kind", ["random-walk", "identical", "alternating"])
def test_budget_is_never_exceeded(name, kind):
    frames = 100_000 if kind == "random-walk" else 20_000
    memory = make_memory(name, 40)
    for frame in synthetic(frames, kind):
        memory.write(frame)
        assert memory.stats()["tokens"] <= 40
    stats = memory.stats()
    assert stats["peak_tokens"] <= 40 and stats["frames_seen"] == frames


def test_curvature_is_zero_on_a_straight_path_and_high_at_a_turn():
    scorer = CurvatureScore()
    direction = np.ones(8) / np.sqrt(8)
    base = np.zeros(8)
    base[0] = 1.0
    curvatures = [scorer.update(base + 0.1 * i * direction)[1] for i in range(5)]
    assert max(curvatures) < 1e-9
    turn = base + 0.4 * direction + 0.3 * np.eye(8)[1]
    assert scorer.update(turn)[1] > 0.3
    still = CurvatureScore()
    for _ in range(4):  # a still robot: identical frames, no division by zero, no curvature
        motion, curvature, score, _, _ = still.update(base)
    assert motion == 0 and curvature == 0 and score == 0


def test_scene_cut_goes_to_clear_memory_and_still_frames_are_discarded():
    memory = CurvatureMemory(400, config=CurvatureConfig())
    rng = np.random.default_rng(1)
    x = rng.normal(size=16)
    for i in range(60):  # a calm stretch
        x = x + 0.01 * rng.normal(size=16)
        memory.write(record(i, x))
    memory.write(record(60, rng.normal(size=16)))  # a cut to another scene
    assert memory.last_route == CLEAR
    for i in range(61, 70):
        memory.write(record(i, np.ones(16)))  # the robot stands still
    assert memory.last_route == "discard"
    memory.write(record(70, np.ones(16)), question_arrives=True)
    assert memory.last_route == CLEAR and memory.items[-1].index == 70


def test_memory_is_causal():
    """Evidence at a time is the same whether or not later frames exist."""
    frames = list(synthetic(600, "random-walk"))
    for name in MEMORIES.available():
        short, full = make_memory(name, 40), make_memory(name, 40)
        for frame in frames[:300]:
            short.write(frame)
            full.write(frame)
        a, b = short.query(frames[299].time), full.query(frames[299].time)
        assert [i.index for i in a.items] == [i.index for i in b.items]
        assert all(i.time <= frames[299].time for i in a.items)
        assert all(n.end <= frames[299].time for n in a.notes)


def test_bad_input_is_refused():
    memory = make_memory("curvature", 40)
    with pytest.raises(MemoryInputError, match=">= 4"):
        make_memory("uniform", 0)
    with pytest.raises(MemoryInputError, match="float32"):
        memory.write(FrameRecord(0, 0.0, np.ones(16), np.ones((4, 16), np.float32)))
    bad = np.ones(16, np.float32)
    bad[3] = np.nan
    with pytest.raises(MemoryInputError, match="NaN"):
        memory.write(FrameRecord(0, 0.0, bad, np.ones((4, 16), np.float32)))
    memory.write(record(0, np.ones(16)))
    with pytest.raises(MemoryInputError, match="16"):
        memory.write(FrameRecord(1, 1.0, np.ones(8, np.float32), np.ones((4, 8), np.float32)))
    with pytest.raises(MemoryInputError, match="does not come after"):
        memory.write(record(1, np.ones(16), time=0.0))
    with pytest.raises(MemoryInputError, match="future of the stream"):
        memory.query(100.0)
    with pytest.raises(MemoryInputError, match="before the newest frame"):
        memory.query(-1.0)
