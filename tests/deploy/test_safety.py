"""The safety layer: a fuzz test over 10,000 random and adversarial policy outputs, and its rules one by one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cortico.deploy.profile import SafetyLimits
from cortico.deploy.safety import SafetyLayer

LIMITS = SafetyLimits(workspace_low=(-0.4, 0.4, 0.0), workspace_high=(0.4, 1.0, 0.45), max_translation=0.2,
                      max_rotation_deg=30, max_speed=0.3, max_angular_speed=0.6, gripper_min_interval=0.0)  # fmt: skip
RATE = 20.0


def _adversarial(rng: np.random.Generator, current: np.ndarray) -> np.ndarray:
    """Half plausible keyframes (a short move, a small turn), half hostile ones of every kind."""
    kind = rng.integers(16)
    turn = Rotation.from_rotvec(rng.normal(0, 0.3, 3)) if kind >= 8 else Rotation.random(random_state=rng)
    orientation = (Rotation.from_quat(current[3:7]) * turn).as_quat() if kind >= 8 else turn.as_quat()
    scale = 0.1 if kind >= 8 else 0.3
    action = np.concatenate([current[:3] + rng.normal(0, scale, 3), orientation, rng.integers(0, 2, 2)])
    if kind == 0:
        action[rng.integers(9)] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == 1:
        action[:3] = rng.uniform(-1e6, 1e6, 3)
    elif kind == 2:
        action[3:7] = 0.0
    elif kind == 3:
        action[3:7] *= rng.choice([1e-9, 1e9])
    elif kind == 4:
        action[:3] = current[:3] + rng.normal(0, 1e-4, 3)  # tiny moves
    elif kind == 5:
        return rng.normal(0, 1, rng.integers(1, 12))  # malformed length
    elif kind == 6:
        action[3:7] = -current[3:7]  # the same orientation, other sign
    return action


@pytest.mark.parametrize("mode", ["clamp", "refuse"])
def test_fuzz_no_command_leaves_the_limits(mode):
    limits = SafetyLimits(**{**LIMITS.__dict__, "on_violation": mode})
    layer = SafetyLayer(limits)
    rng = np.random.default_rng(0 if mode == "clamp" else 1)
    low, high = np.array(limits.workspace_low), np.array(limits.workspace_high)
    violations, sent = [], 0
    trials = 5_000
    for trial in range(trials):
        current = np.concatenate([rng.uniform(low, high), Rotation.random(random_state=rng).as_quat()])
        decision = layer.check(_adversarial(rng, current), current, bool(rng.integers(2)))
        if decision.refused:
            assert decision.target is None and decision.reasons
            continue
        sent += 1
        target = decision.target
        if not np.isfinite(target).all():
            violations.append((trial, "non-finite target"))
            continue
        if np.any(target[:3] < low - 1e-9) or np.any(target[:3] > high + 1e-9):
            violations.append((trial, "outside the workspace"))
        if np.linalg.norm(target[:3] - current[:3]) > limits.max_translation + 1e-9:
            violations.append((trial, "step too long"))
        turn = np.degrees((Rotation.from_quat(current[3:7]).inv() * Rotation.from_quat(target[3:7])).magnitude())
        if turn > limits.max_rotation_deg + 1e-6:
            violations.append((trial, f"turn {turn:.2f} deg"))
        path = np.vstack([current, *decision.waypoints(current, RATE)])
        if np.max(np.linalg.norm(np.diff(path[:, :3], axis=0), axis=1)) * RATE > limits.max_speed + 1e-6:
            violations.append((trial, "too fast"))
        rotations = Rotation.from_quat(path[:, 3:7])
        if np.max((rotations[:-1].inv() * rotations[1:]).magnitude()) * RATE > limits.max_angular_speed + 1e-6:
            violations.append((trial, "turning too fast"))
    assert not violations, violations[:10]
    assert sent > trials // 10, "the fuzz test must exercise commands that are sent, not only refusals"


def test_each_rule(tmp_path):
    layer = SafetyLayer(LIMITS, audit_path=tmp_path / "audit.jsonl")
    current = np.array([0.0, 0.7, 0.3, 0, 0, 0, 1.0])
    outside = layer.check([0.0, 0.7, 0.9, 0, 0, 0, 1, 1, 0], current, True)
    assert not outside.refused and outside.target[2] == 0.45 and "clamped" in outside.reasons[0]
    far = layer.check([0.0, 0.95, 0.3, 0, 0, 0, 1, 1, 0], current, True)
    assert np.isclose(np.linalg.norm(far.target[:3] - current[:3]), 0.2) and "shortened" in far.reasons[0]
    assert far.duration == pytest.approx(0.2 / 0.3)
    nan = layer.check([np.nan] * 9, current, True)
    assert nan.refused and "NaN" in nan.reasons[0]
    layer.trigger_estop("test")
    assert layer.check([0.0, 0.7, 0.3, 0, 0, 0, 1, 1, 0], current, True).refused
    layer.reset_estop()
    assert not layer.check([0.0, 0.7, 0.3, 0, 0, 0, 1, 1, 0], current, True).refused
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records].count("keyframe") == 5 and records[0]["requested"][2] == 0.9
    assert records[0]["sent"][2] == 0.45 and any(r["event"] == "estop" for r in records)


def test_refuse_mode_and_gripper_rate_limit():
    limits = SafetyLimits(**{**LIMITS.__dict__, "on_violation": "refuse", "gripper_min_interval": 10.0})
    layer = SafetyLayer(limits)
    current = np.array([0.0, 0.7, 0.2, 0, 0, 0, 1.0])
    assert layer.check([0.0, 0.7, 0.9, 0, 0, 0, 1, 1, 0], current, True).refused
    first = layer.check([0.0, 0.7, 0.2, 0, 0, 0, 1, 0, 0], current, True)
    assert first.gripper_open is False
    second = layer.check([0.0, 0.7, 0.2, 0, 0, 0, 1, 1, 0], current, False)
    assert second.gripper_open is False and "held back" in second.reasons[0]
