"""Closed-loop rollouts traced against the scripted expert: where a policy's keyframes go wrong.

``cortico eval`` records every keyframe a policy chose (position and gripper). For each episode the scripted
expert runs on the same task and seed (privileged state, so its keyframes are where the objects really are);
per episode: how far the first keyframe lands from the expert's first, how far the first grasp (the first
keyframe that closes the gripper) lands from the expert's first grasp, and how many keyframes at the end
repeat the one before (the policy stuck).
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from cortico.policies.evaluation import EpisodeResult

REPEAT_TOLERANCE_M = 0.01  # a keyframe within 1 cm of the one before, with the same gripper, is a repeat


def first_grasp(keyframes: np.ndarray) -> np.ndarray | None:
    """Position of the first keyframe that closes the gripper (rows ``[x, y, z, gripper_open]``), if any."""
    closing = np.nonzero(keyframes[:, 3] < 0.5)[0]
    return keyframes[closing[0], :3] if len(closing) else None


def trailing_repeats(keyframes: np.ndarray) -> int:
    """Keyframes at the end that repeat the one before (within :data:`REPEAT_TOLERANCE_M`, same gripper)."""
    count = 0
    for later, earlier in zip(keyframes[::-1], keyframes[-2::-1]):
        if np.linalg.norm(later[:3] - earlier[:3]) > REPEAT_TOLERANCE_M or later[3] != earlier[3]:
            break
        count += 1
    return count


def trace_episode(policy_keyframes: np.ndarray, expert_keyframes: np.ndarray) -> dict[str, Any]:
    """Errors of one episode against the expert's keyframes for the same seed (centimetres)."""
    trace: dict[str, Any] = {
        "first_keyframe_cm": 100 * float(np.linalg.norm(policy_keyframes[0, :3] - expert_keyframes[0, :3])),
        "trailing_repeats": trailing_repeats(policy_keyframes),
        "grasp_cm": None,
    }
    ours, theirs = first_grasp(policy_keyframes), first_grasp(expert_keyframes)
    if ours is not None and theirs is not None:
        trace["grasp_cm"] = 100 * float(np.linalg.norm(ours - theirs))
    return trace


def summarise(traces: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of a group of episode traces."""

    def median(key: str) -> float | None:
        values = [t[key] for t in traces if t[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "episodes": len(traces),
        "first_keyframe_cm_median": median("first_keyframe_cm"),
        "grasp_cm_median": median("grasp_cm"),
        "grasps_off_by_3cm": sum(t["grasp_cm"] is not None and t["grasp_cm"] > 3 for t in traces),
        "trailing_repeats_median": median("trailing_repeats"),
    }


def keyframe_table(policy_keyframes: np.ndarray, expert_keyframes: np.ndarray) -> str:
    """The policy's keyframes beside the expert's, one row per keyframe: x y z (cm), gripper, distance (cm).

    Reading these shows what the medians hide: a stage repeated, a pre-grasp skipped, a carry to the wrong place.
    """
    policy_keyframes, expert_keyframes = np.asarray(policy_keyframes), np.asarray(expert_keyframes)

    def cell(row: np.ndarray | None) -> str:
        if row is None:
            return " " * 29
        x, y, z = 100 * row[:3]
        return f"{x:7.1f} {y:7.1f} {z:7.1f} {'open' if row[3] >= 0.5 else 'shut'}"

    lines = [f"{'#':>3} {'policy x/y/z cm, gripper':^29} | {'expert x/y/z cm, gripper':^29} | apart cm"]
    for index in range(max(len(policy_keyframes), len(expert_keyframes))):
        ours = policy_keyframes[index] if index < len(policy_keyframes) else None
        theirs = expert_keyframes[index] if index < len(expert_keyframes) else None
        apart = "" if ours is None or theirs is None else f"{100 * np.linalg.norm(ours[:3] - theirs[:3]):8.1f}"
        lines.append(f"{index:3d} {cell(ours)} | {cell(theirs)} | {apart}".rstrip())
    return "\n".join(lines)


def trace_rollouts(episodes: list[EpisodeResult], progress: bool = True) -> dict[str, Any]:
    """Trace every episode against the expert; per-task summaries of the successful and failed ones apart.

    Episodes where the scripted expert itself fails are left out and counted.
    """
    from tqdm import tqdm

    from cortico.policies.expert import ExpertKeyframePolicy

    if not all(e.actions for e in episodes):
        raise ValueError("these episodes were evaluated before evaluations recorded their keyframes: evaluate again")
    per_episode, expert_failed = [], 0
    for episode in tqdm(episodes, desc="trace", unit="ep", disable=not progress):
        expert = ExpertKeyframePolicy(episode.task, episode.seed, require_success=False)
        if not expert.expert_succeeded:
            expert_failed += 1
            continue
        theirs = np.array([[*a.position, float(a.gripper_open)] for a in expert.actions])
        ours = np.asarray(episode.actions, dtype=float)
        per_episode.append({
            "task": episode.task, "seed": episode.seed, "success": episode.success, **trace_episode(ours, theirs),
            "keyframes": np.round(ours, 4).tolist(), "expert_keyframes": np.round(theirs, 4).tolist(),
        })  # fmt: skip

    def split(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "succeeded": summarise([t for t in rows if t["success"]]),
            "failed": summarise([t for t in rows if not t["success"]]),
        }

    tasks = {task: split([t for t in per_episode if t["task"] == task]) for task in dict.fromkeys(
        t["task"] for t in per_episode)}  # fmt: skip
    return {"expert_failed_episodes": expert_failed, "all": split(per_episode), "tasks": tasks, "episodes": per_episode}
