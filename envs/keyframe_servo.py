"""Keyframe controller for Meta-World: reach a target pose through Meta-World's delta-position actions.

Meta-World moves the hand by dragging a mocap body by at most ``action_scale`` metres per step. The
controller drags the mocap in a straight line to the point that puts the tool centre point on the target
(feed-forward from the hand's resting offset), corrects the goal whenever the hand comes to rest off
target (feedback, capped so that a blocked hand does not wind the goal up and shoot past the target once it
slips free), and once the tool has settled on the target it opens or closes the gripper (arm first, then
gripper, as RLBench's ``MoveArmThenGripper``).

A move that may not ignore collisions (``ignore_collision`` False, RLBench's planner semantics) and is blocked
far from its target is retried once around the obstacle: back to where the move started, up to a clearance
height, across, and straight down onto the target. That is the simplest path a planner would find around a
handle or a rim; RLBench's planner searches more. A move that may ignore collisions stays a straight line.
It stops with a clear message when the target is outside the reachable box, the hand is blocked (also on the
detour), or the step limit is hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from cortico.envs.contract import KeyframeAction

if TYPE_CHECKING:
    from cortico.envs.metaworld_backend import MetaWorldEnv


@dataclass(frozen=True)
class ServoConfig:
    """Keyframe controller settings.

    Attributes:
        position_tolerance: distance (m) at which the target counts as reached.
        gain: fraction of a resting error added to the mocap goal per correction (the feedback loop).
        max_correction: largest total feedback shift (m) of the mocap goal from the feed-forward goal.
        settle_speed: tool motion per step (m) under which the hand counts as at rest.
        max_steps: low-level steps allowed for the arm phase of one keyframe (for each leg of a detour).
        gripper_steps: low-level steps given to the fingers to open or close.
        stall_steps: consecutive steps without progress that count as blocked.
        stall_distance: progress (m) below which a step counts as no progress.
        speed: fraction of the arm's largest per-step motion the controller may use (a slow command is
            0.5); the step limit grows to match.
        detour_clearance: height (m) above the higher of start and target at which a blocked move crosses
            over the obstacle (0: no detours).
        detour_min_gap: a move blocked at least this far (m) from its target takes the detour; closer, the
            contact is taken as intended (a button pressed home, a drawer shut).
    """

    position_tolerance: float = 0.005
    gain: float = 0.7
    max_correction: float = 0.1
    settle_speed: float = 0.0005
    max_steps: int = 150
    gripper_steps: int = 15
    stall_steps: int = 10
    stall_distance: float = 0.0005
    speed: float = 1.0
    detour_clearance: float = 0.1
    detour_min_gap: float = 0.03

    def __post_init__(self) -> None:
        if not 0 < self.gain <= 1:
            raise ValueError(f"servo gain must be in (0, 1], got {self.gain}")
        if not 0 < self.speed <= 1:
            raise ValueError(f"servo speed must be in (0, 1] (a fraction of the arm's top speed), got {self.speed}")
        if self.position_tolerance <= 0 or self.max_steps < 1 or self.gripper_steps < 0 or self.stall_steps < 1:
            raise ValueError(f"invalid servo settings: {self}")
        if self.max_correction < 0 or self.detour_clearance < 0 or self.detour_min_gap < 0:
            raise ValueError(f"max_correction, detour_clearance and detour_min_gap must be >= 0: {self}")


def servo_config(settings: dict[str, Any] | None) -> ServoConfig:
    """A :class:`ServoConfig` with ``settings`` changed (e.g. ``{"detour_clearance": 0}``: straight lines only)."""
    accepted = [f.name for f in fields(ServoConfig)]
    unknown = sorted(set(settings or {}) - set(accepted))
    if unknown:
        raise ValueError(f"unknown keyframe controller settings {unknown}; accepted: {', '.join(accepted)}")
    return ServoConfig(**(settings or {}))


@dataclass(frozen=True)
class ServoResult:
    """How a keyframe move ended."""

    reached: bool
    steps: int
    position_error: float
    message: str


@dataclass(frozen=True)
class _Leg:
    """How one straight arm motion ended."""

    settled: bool  # the tool came to rest within tolerance of the point
    stalled: bool
    error: float  # distance (m) left to the point
    message: str


class _Mover:
    """Straight arm motions of one keyframe, holding the gripper as it is; counts the low-level steps."""

    def __init__(self, env: MetaWorldEnv, config: ServoConfig, on_step: Callable[[MetaWorldEnv], None] | None):
        self.env, self.config, self.on_step = env, config, on_step
        self.low, self.high = env.reachable_bounds
        self.hold_grab = -1.0 if env.proprioception()["gripper_open"] else 1.0
        self.steps = 0
        self.mocap_goal = env.mocap_position()  # where the last motion dragged the mocap

    def step(self, mocap_goal: np.ndarray, grab: float) -> None:
        speed = self.config.speed
        delta = np.clip((mocap_goal - self.env.mocap_position()) / self.env.action_scale, -speed, speed)
        self.env.step_delta(np.append(delta, grab))
        self.steps += 1
        if self.on_step is not None:
            self.on_step(self.env)

    def move(self, point: np.ndarray) -> _Leg:
        """Drag the tool in a straight line to ``point`` (inside the reachable box) until it rests there."""
        env, config = self.env, self.config
        feed_forward = point - env.tcp_offset
        mocap_low, mocap_high = self.low - env.tcp_offset, self.high - env.tcp_offset
        mocap_goal = self.mocap_goal = feed_forward
        step_limit = int(np.ceil(config.max_steps / config.speed))
        best_error, since_progress, steps = np.inf, 0, 0
        previous_tcp = env.tcp_position
        while True:
            tcp = env.tcp_position
            offset = point - tcp
            error = float(np.linalg.norm(offset))
            settled = np.linalg.norm(tcp - previous_tcp) < config.settle_speed
            if error < config.position_tolerance and settled:
                return _Leg(True, False, error, "")
            if env.episode_over:
                return _Leg(False, False, error, f"episode step budget ({env.max_episode_steps}) spent "
                                                 f"{error:.3f} m from the target")  # fmt: skip
            if steps >= step_limit:
                return _Leg(False, False, error, f"step limit ({step_limit}) hit {error:.3f} m from the target")
            if error < best_error - config.stall_distance:
                best_error, since_progress = error, 0
            else:
                since_progress += 1
            if since_progress >= config.stall_steps:
                return _Leg(False, True, error, f"stalled {error:.3f} m from the target (the hand is blocked)")
            mocap_arrived = np.linalg.norm(mocap_goal - env.mocap_position()) < 1e-6
            if mocap_arrived and settled:
                # Feedback: the hand came to rest off target (load, contact, weld sag); shift the mocap goal,
                # at most max_correction from the feed-forward goal.
                shift = mocap_goal + config.gain * offset - feed_forward
                norm = float(np.linalg.norm(shift))
                if norm > config.max_correction:
                    shift *= config.max_correction / norm
                mocap_goal = self.mocap_goal = np.clip(feed_forward + shift, mocap_low, mocap_high)
            previous_tcp = tcp
            self.step(mocap_goal, self.hold_grab)
            steps += 1


def servo_to_keyframe(
    env: MetaWorldEnv,
    action: KeyframeAction,
    config: ServoConfig,
    on_step: Callable[[MetaWorldEnv], None] | None = None,
) -> ServoResult:
    """Execute ``action`` on ``env`` (arm, then gripper) and report how it went."""
    mover = _Mover(env, config, on_step)
    target = np.asarray(action.position, dtype=np.float64)
    reachable_target = np.clip(target, mover.low, mover.high)
    outside = not np.allclose(reachable_target, target, atol=1e-9)
    start = env.tcp_position
    leg = mover.move(reachable_target)
    detoured = False
    blocked_far = float(np.linalg.norm(reachable_target - env.tcp_position)) >= config.detour_min_gap
    if leg.stalled and blocked_far and not action.ignore_collision and config.detour_clearance > 0:
        detoured = True
        height = min(max(start[2], reachable_target[2]) + config.detour_clearance, mover.high[2])
        # Via points need not be hit exactly: on to the next once the tool is within detour_min_gap of one.
        via_points = [start, np.append(start[:2], height), np.append(reachable_target[:2], height)]
        for point in via_points:
            leg = mover.move(point)
            if leg.error >= config.detour_min_gap:
                break
        else:
            leg = mover.move(reachable_target)

    want_grab = -1.0 if action.gripper_open else 1.0
    if want_grab != mover.hold_grab:
        for _ in range(config.gripper_steps):
            if env.episode_over:
                break
            mover.step(mover.mocap_goal, want_grab)

    final_error = float(np.linalg.norm(target - env.tcp_position))
    reached = leg.settled and not outside
    if outside:
        box = f"[{np.round(mover.low, 3).tolist()}, {np.round(mover.high, 3).tolist()}]"
        message = (
            f"target {np.round(target, 3).tolist()} is outside the reachable box {box}; "
            "moved to the nearest reachable point"
        )
    elif reached:
        message = "reached around an obstacle (detour)" if detoured else "reached"
    else:
        message = leg.message + (" on the detour around an obstacle" if detoured else "")
    return ServoResult(reached=reached, steps=mover.steps, position_error=final_error, message=message)
