"""Keyframe discovery in a demonstration.

The PerAct/RVT heuristic: a step is a keyframe when the gripper's open/close state changes, when the arm
has stopped (all joint velocities near zero while the gripper state is steady, with a cool-down so one
pause gives one keyframe), or when it is the last step. If the last two keyframes are adjacent, the
second to last is dropped.

Scripted experts that never pause (Meta-World's glide from sub-goal to sub-goal) give too few keyframes
for a straight-line controller to follow, so the heuristic can add path corners (``waypoint_tolerance``):
within each stretch of constant gripper state, the tool path is simplified (Ramer-Douglas-Peucker) until
straight segments between keyframes stay within the tolerance of the demonstrated path, in the spirit of
waypoint extraction for imitation learning (AWE, Shi et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeyframeConfig:
    """Settings of the keyframe heuristic.

    Attributes:
        stopped_velocity: joint speed (rad/s) under which every joint counts as still.
        cooldown: steps after a "stopped" keyframe during which no new "stopped" keyframe is taken.
        waypoint_tolerance: metres; when set, path corners are added so that straight lines between
            keyframes stay this close to the demonstrated tool path. ``None`` gives the pure heuristic.
        settle_gripper: move gripper-change keyframes to the hand's slowest step while the fingers move
            (needs finger joint positions and tool positions).
        settle_motion: finger joint change per step under which the fingers count as still.
        max_settle_steps: latest a gripper-change keyframe may move after the command changed.
    """

    stopped_velocity: float = 0.1
    cooldown: int = 4
    waypoint_tolerance: float | None = None
    settle_gripper: bool = True
    settle_motion: float = 1e-3
    max_settle_steps: int = 25


def _gripper_steady(gripper_open: np.ndarray, i: int) -> bool:
    """The gripper state is the same at steps i-2 .. i+1 (only checked away from the episode's end)."""
    n = len(gripper_open)
    if i < 2 or i >= n - 2:
        return False
    window = gripper_open[i - 2 : i + 2]
    return bool(np.all(window == window[0]))


def simplify_path(points: np.ndarray, tolerance: float) -> list[int]:
    """Indices of a Ramer-Douglas-Peucker simplification of a polyline (first and last always kept).

    Args:
        points: ``(N, D)`` polyline vertices.
        tolerance: maximum distance of any vertex from the simplified polyline.
    """
    points = np.asarray(points, dtype=np.float64)
    keep = {0, len(points) - 1}
    stack = [(0, len(points) - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        segment = points[end] - points[start]
        inner = points[start + 1 : end] - points[start]
        length = np.linalg.norm(segment)
        if length < 1e-12:
            distances = np.linalg.norm(inner, axis=1)
        else:
            along = np.clip(inner @ segment / length**2, 0.0, 1.0)
            distances = np.linalg.norm(inner - along[:, None] * segment, axis=1)
        farthest = int(np.argmax(distances))
        if distances[farthest] > tolerance:
            split = start + 1 + farthest
            keep.add(split)
            stack.extend([(start, split), (split, end)])
    return sorted(keep)


def _path_corners(positions: np.ndarray, anchors: list[int], tolerance: float) -> list[int]:
    """Corners of the tool path between consecutive anchor steps."""
    corners: list[int] = []
    for start, end in zip(anchors[:-1], anchors[1:]):
        corners.extend(start + i for i in simplify_path(positions[start : end + 1], tolerance))
    return corners


def _stopped_steps(gripper_open: np.ndarray, joint_velocities: np.ndarray, config: KeyframeConfig) -> list[int]:
    """Steps where the arm is still and the gripper steady, one per pause (cool-down)."""
    still = np.all(np.abs(joint_velocities) <= config.stopped_velocity, axis=1)
    steps: list[int] = []
    cooldown_left = 0
    for i in range(len(gripper_open)):
        stopped = cooldown_left <= 0 and bool(still[i]) and _gripper_steady(gripper_open, i)
        cooldown_left = config.cooldown if stopped else cooldown_left - 1
        if stopped and i > 0:
            steps.append(i)
    return steps


def _grip_step(change: int, limit: int, fingers: np.ndarray, speed: np.ndarray, config: KeyframeConfig) -> int:
    """Where a gripper change takes effect: the hand's slowest step while the fingers are still moving.

    Demonstrators that grasp on the fly keep descending while the fingers close; "move, then close"
    must close at the bottom of that motion, not where the command was first given.
    """
    end = min(limit, change + config.max_settle_steps)
    quiet = 0
    for j in range(change + 1, end + 1):
        started = np.max(np.abs(fingers[j] - fingers[change])) > 5 * config.settle_motion
        still = np.max(np.abs(fingers[j] - fingers[j - 1])) < config.settle_motion
        quiet = quiet + 1 if started and still else 0
        if quiet >= 2:
            end = j
            break
    return change + int(np.argmin(speed[change : end + 1]))


def extract_keyframes(
    gripper_open: np.ndarray,
    joint_velocities: np.ndarray,
    config: KeyframeConfig | None = None,
    positions: np.ndarray | None = None,
    gripper_joint_positions: np.ndarray | None = None,
) -> list[int]:
    """Return the keyframe step indices of one episode.

    Args:
        gripper_open: ``(T,)`` gripper state per step (1 open, 0 closed).
        joint_velocities: ``(T, J)`` joint velocities per step.
        config: heuristic settings.
        positions: ``(T, 3)`` tool positions; required when ``config.waypoint_tolerance`` is set.
        gripper_joint_positions: ``(T, G)`` finger joints; when given with ``positions`` (and
            ``config.settle_gripper``), a gripper-change keyframe moves to the hand's slowest step while the
            fingers move, so that replaying "move, then close" grasps where the demonstrator did.

    Returns:
        Sorted step indices (never 0; always ending with ``T - 1`` when ``T > 1``).
    """
    config = config or KeyframeConfig()
    gripper_open = np.asarray(gripper_open).reshape(-1)
    joint_velocities = np.asarray(joint_velocities)
    n = len(gripper_open)
    if joint_velocities.shape[0] != n:
        raise ValueError(f"gripper_open has {n} steps but joint_velocities has {joint_velocities.shape[0]}")
    if n < 2:
        return []

    changes = [i for i in range(1, n) if gripper_open[i] != gripper_open[i - 1]]
    keyframes = {*_stopped_steps(gripper_open, joint_velocities, config), n - 1}
    settling_windows: list[tuple[int, int]] = []
    if config.settle_gripper and gripper_joint_positions is not None and positions is not None:
        fingers = np.asarray(gripper_joint_positions).reshape(n, -1)
        xyz = np.asarray(positions)[:, :3]
        speed = np.concatenate([[0.0], np.linalg.norm(np.diff(xyz, axis=0), axis=1)])
        for index, change in enumerate(changes):
            limit = (changes[index + 1] - 1) if index + 1 < len(changes) else n - 1
            settled = _grip_step(change, limit, fingers, speed, config)
            settling_windows.append((change, settled))
            keyframes.add(settled)
    else:
        keyframes.update(changes)

    if config.waypoint_tolerance is not None:
        if positions is None or len(positions) != n:
            raise ValueError("waypoint_tolerance needs the (T, 3) tool positions of every step")
        anchors = sorted({0, *keyframes})
        corners = _path_corners(np.asarray(positions)[:, :3], anchors, config.waypoint_tolerance)
        # no corner while the fingers are still closing: replay would change the gripper there instead
        corners = [c for c in corners if not any(a <= c < b for a, b in settling_windows)]
        keyframes.update(corners)

    ordered = sorted(keyframes - {0})
    if len(ordered) > 1 and ordered[-1] - ordered[-2] == 1:
        ordered.pop(-2)
    return ordered
