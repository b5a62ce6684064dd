"""Rollout traces: keyframes of evaluation episodes measured against the scripted expert's."""

from __future__ import annotations

import numpy as np
import pytest

from cortico.policies.evaluation import EpisodeResult
from cortico.policies.expert import ExpertKeyframePolicy
from cortico.policies.rollout_trace import (
    first_grasp,
    keyframe_table,
    trace_episode,
    trace_rollouts,
    trailing_repeats,
)

OPEN, CLOSED = 1.0, 0.0


def test_trailing_repeats_count_only_the_stuck_end() -> None:
    keyframes = np.array([
        [0.0, 0.6, 0.2, OPEN], [0.0, 0.6, 0.2, OPEN],  # a repeat early on is not the stuck end
        [0.1, 0.6, 0.0, CLOSED], [0.1, 0.6, 0.1, CLOSED],
        [0.1, 0.605, 0.1, CLOSED], [0.1, 0.6, 0.1, CLOSED],
    ])  # fmt: skip
    assert trailing_repeats(keyframes) == 2
    assert trailing_repeats(keyframes[:1]) == 0
    changed_gripper = keyframes[-2:].copy()
    changed_gripper[-1, 3] = OPEN
    assert trailing_repeats(changed_gripper) == 0, "the same place with the gripper changed is progress"


def test_trace_measures_first_keyframe_and_first_grasp() -> None:
    expert = np.array([[0.0, 0.6, 0.2, OPEN], [0.0, 0.6, 0.0, CLOSED], [0.2, 0.7, 0.1, CLOSED]])
    policy = np.array([[0.03, 0.6, 0.2, OPEN], [0.0, 0.64, 0.0, OPEN], [0.0, 0.66, 0.0, CLOSED]])
    trace = trace_episode(policy, expert)
    assert trace["first_keyframe_cm"] == pytest.approx(3.0)
    assert trace["grasp_cm"] == pytest.approx(6.0), "the first closing keyframe of each, not the same index"
    assert first_grasp(policy[:2]) is None
    assert trace_episode(policy[:2], expert)["grasp_cm"] is None


def test_keyframe_table_sets_each_keyframe_beside_the_experts() -> None:
    expert = np.array([[0.0, 0.6, 0.2, OPEN], [0.0, 0.6, 0.0, CLOSED]])
    policy = np.array([[0.03, 0.6, 0.2, OPEN], [0.0, 0.64, 0.0, CLOSED], [0.1, 0.7, 0.1, CLOSED]])
    rows = keyframe_table(policy, expert).splitlines()
    assert len(rows) == 4, "a header and one row per keyframe of the longer list"
    assert rows[1].split() == ["0", "3.0", "60.0", "20.0", "open", "|", "0.0", "60.0", "20.0", "open", "|", "3.0"]
    assert rows[2].split()[-1] == "4.0" and "shut" in rows[2]
    assert rows[3].split() == ["2", "10.0", "70.0", "10.0", "shut", "|", "|"]


@pytest.mark.slow
def test_the_experts_own_keyframes_trace_to_zero_and_old_episodes_are_refused() -> None:
    task, seed = "pick-place", 3
    expert = ExpertKeyframePolicy(task, seed)
    actions = [[*map(float, a.position), float(a.gripper_open)] for a in expert.actions]
    episode = EpisodeResult(task, seed, "pick up the puck", True, len(actions), actions=actions)
    traced = trace_rollouts([episode], progress=False)
    row = traced["episodes"][0]
    assert row["first_keyframe_cm"] == pytest.approx(0.0, abs=1e-6) and row["grasp_cm"] == pytest.approx(0.0, abs=1e-6)
    assert traced["tasks"][task]["succeeded"]["episodes"] == 1 and traced["all"]["failed"]["episodes"] == 0
    assert row["keyframes"] == row["expert_keyframes"] == np.round(actions, 4).tolist()
    with pytest.raises(ValueError, match="evaluate again"):
        trace_rollouts([EpisodeResult(task, seed, "pick up the puck", False, 3)], progress=False)
