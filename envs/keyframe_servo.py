"""Keyframe controller for Meta-World: reach a target pose through Meta-World's delta-position actions.

Meta-World moves the hand by dragging a mocap body by at most ``action_scale`` metres per step. The
controller drags the mocap in a straight line to the point that puts the tool centre point on the target
(feed-forward from the hand's resting offset), corrects the goal whenever the hand comes to rest off
target (feedback), and once the tool has settled on the target it opens or closes the gripper (arm first,
then gripper, as RLBench's ``MoveArmThenGripper``). It stops with a clear message when the target is
outside the reachable box, the hand is blocked, or the step limit is hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
        settle_speed: tool motion per step (m) under which the hand counts as at rest.
        max_steps: low-level steps allowed for the arm phase of one keyframe.
        gripper_steps: low-level steps given to the fingers to open or close.
        stall_steps: consecutive steps without progress that count as blocked.
        stall_distance: progress (m) below which a step counts as no progress.
        speed: fraction of the arm's largest per-step motion the controller may use (a slow command is
            0.5); the step limit grows to match.
    """

    position_tolerance: float = 0.005
    gain: float = 0.7
    settle_speed: float = 0.0005
    max_steps: int = 150
    gripper_steps: int = 15
    stall_steps: int = 10
    stall_distance: float = 0.0005
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.gain <= 1:
            raise ValueError(f"servo gain must be in (0, 1], got {self.gain}")
        if not 0 < self.speed <= 1:
            raise ValueError(f"servo speed must be in (0, 1] (a fraction of the arm's top speed), got {self.speed}")
        if self.position_tolerance <= 0 or self.max_steps < 1 or self.gripper_steps < 0 or self.stall_steps < 1:
            raise ValueError(f"invalid servo settings: {self}")


@dataclass(frozen=True)
class ServoResult:
    """How a keyframe move ended."""

    reached: bool
    steps: int
    position_error: float
    message: str


def servo_to_keyframe(
    env: MetaWorldEnv,
    action: KeyframeAction,
    config: ServoConfig,
    on_step: Callable[[MetaWorldEnv], None] | None = None,
) -> ServoResult:
    """Execute ``action`` on ``env`` (arm, then gripper) and report how it went."""
    target = np.asarray(action.position, dtype=np.float64)
    low, high = env.reachable_bounds
    reachable_target = np.clip(target, low, high)
    outside = not np.allclose(reachable_target, target, atol=1e-9)
    scale = env.action_scale
    mocap_low, mocap_high = low - env.tcp_offset, high - env.tcp_offset
    hold_grab = -1.0 if env.proprioception()["gripper_open"] else 1.0
    # Feed-forward: drag the mocap to where the hand's resting offset puts the tool on the target.
    mocap_goal = reachable_target - env.tcp_offset

    steps = 0
    step_limit = int(np.ceil(config.max_steps / config.speed))
    best_error = np.inf
    since_progress = 0
    message = ""
    reached = False
    previous_tcp = env.tcp_position

    def step(grab: float) -> None:
        nonlocal steps, previous_tcp
        previous_tcp = env.tcp_position
        delta = np.clip((mocap_goal - env.mocap_position()) / scale, -config.speed, config.speed)
        env.step_delta(np.append(delta, grab))
        steps += 1
        if on_step is not None:
            on_step(env)

    while True:
        tcp = env.tcp_position
        offset = reachable_target - tcp
        error = float(np.linalg.norm(offset))
        settled = np.linalg.norm(tcp - previous_tcp) < config.settle_speed
        if error < config.position_tolerance and settled:
            reached = not outside
            break
        if env.episode_over:
            message = f"episode step budget ({env.max_episode_steps}) spent {error:.3f} m from the target"
            break
        if steps >= step_limit:
            message = f"step limit ({step_limit}) hit {error:.3f} m from the target"
            break
        if error < best_error - config.stall_distance:
            best_error, since_progress = error, 0
        else:
            since_progress += 1
        if since_progress >= config.stall_steps:
            message = f"stalled {error:.3f} m from the target (the hand is blocked)"
            break
        mocap_arrived = np.linalg.norm(mocap_goal - env.mocap_position()) < 1e-6
        if mocap_arrived and settled:
            # Feedback: the hand came to rest off target (load, contact, weld sag); shift the mocap goal.
            mocap_goal = np.clip(mocap_goal + config.gain * offset, mocap_low, mocap_high)
        step(hold_grab)

    want_grab = -1.0 if action.gripper_open else 1.0
    if want_grab != hold_grab:
        for _ in range(config.gripper_steps):
            if env.episode_over:
                break
            step(want_grab)

    final_error = float(np.linalg.norm(target - env.tcp_position))
    if outside:
        message = (
            f"target {np.round(target, 3).tolist()} is outside the reachable box "
            f"[{np.round(low, 3).tolist()}, {np.round(high, 3).tolist()}]; moved to the nearest reachable point"
        )
    elif reached:
        message = "reached"
    return ServoResult(reached=reached, steps=steps, position_error=final_error, message=message)
