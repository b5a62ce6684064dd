"""The safety layer: always between the policy and the robot.

Every keyframe the policy asks for is checked before anything moves: finite numbers, the workspace box
(clamp or refuse), the largest step per keyframe in translation and rotation (shortened or refused), the
gripper's rate limit, and a latched emergency stop. The motion is then streamed at a bounded speed.
Every decision (what was asked, what is sent, why it changed) goes to an audit log, also in dry-run mode
where nothing is sent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from cortico.deploy.profile import SafetyLimits

logger = logging.getLogger(__name__)


@dataclass
class SafetyDecision:
    """What the safety layer made of one requested keyframe.

    Attributes:
        requested: the 9 numbers the policy asked for (as given; may hold NaN).
        target: the ``(7,)`` pose that will be streamed to (None when refused).
        gripper_open: the gripper state to command after the motion.
        duration: seconds the streamed motion takes at the speed limits.
        refused: nothing is sent.
        reasons: every change or refusal, in words.
    """

    requested: list[float]
    target: np.ndarray | None
    gripper_open: bool
    duration: float
    refused: bool
    reasons: list[str] = field(default_factory=list)

    def waypoints(self, start: np.ndarray, rate: float) -> list[np.ndarray]:
        """Intermediate poses from ``start`` to the target, one per control tick (linear + slerp)."""
        if self.target is None:
            return []
        ticks = max(1, int(np.ceil(self.duration * rate)))
        fractions = np.linspace(0.0, 1.0, ticks + 1)[1:]
        rotations = Rotation.from_quat(np.stack([start[3:7], self.target[3:7]]))
        orientations = Slerp([0.0, 1.0], rotations)(fractions).as_quat()
        positions = start[None, :3] + fractions[:, None] * (self.target[None, :3] - start[None, :3])
        return [np.concatenate([p, q]) for p, q in zip(positions, orientations)]


class SafetyLayer:
    """Check and limit keyframes (see module doc).

    Args:
        limits: the robot profile's limits.
        audit_path: JSON-lines file that records every decision (None: log only).
        dry_run: decide and record, but the caller must not send anything (``decision.refused`` stays as
            decided so the log shows what would have happened).
    """

    def __init__(self, limits: SafetyLimits, audit_path: str | Path | None = None, dry_run: bool = False) -> None:
        self.limits = limits
        self.dry_run = dry_run
        self.audit_path = Path(audit_path) if audit_path else None
        self._low = np.asarray(limits.workspace_low, dtype=float)
        self._high = np.asarray(limits.workspace_high, dtype=float)
        self._estop_reason: str | None = None
        self._last_gripper_change = -np.inf
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ e-stop
    @property
    def estopped(self) -> bool:
        """True while the emergency stop is latched."""
        return self._estop_reason is not None

    def trigger_estop(self, reason: str) -> None:
        """Latch the emergency stop (until :meth:`reset_estop`)."""
        with self._lock:
            if self._estop_reason is None:
                logger.warning("EMERGENCY STOP: %s", reason)
                self._estop_reason = reason
        self._audit({"event": "estop", "reason": reason})

    def reset_estop(self) -> None:
        """Release a latched emergency stop (an operator's decision)."""
        with self._lock:
            self._estop_reason = None
        self._audit({"event": "estop_reset"})

    # ------------------------------------------------------------------------------------------- check
    def check(
        self, requested: np.ndarray | list[float], current_pose: np.ndarray, gripper_open: bool
    ) -> SafetyDecision:
        """Decide what to send for a requested keyframe, given the measured gripper pose and state."""
        raw = np.asarray(requested, dtype=float).reshape(-1)
        decision = SafetyDecision(raw.tolist(), None, gripper_open, 0.0, True)
        if self.estopped:
            decision.reasons.append(f"emergency stop latched ({self._estop_reason})")
        elif raw.shape != (9,):
            decision.reasons.append(f"malformed action: {raw.shape[0]} numbers instead of 9")
        elif not np.isfinite(raw).all():
            decision.reasons.append("action contains NaN or inf")
        elif np.linalg.norm(raw[3:7]) < 1e-6:
            decision.reasons.append("action quaternion has zero norm")
        else:
            self._limit(raw, np.asarray(current_pose, dtype=float), gripper_open, decision)
        self._audit(
            {
                "event": "keyframe",
                "requested": decision.requested,
                "sent": None if decision.target is None else decision.target.tolist(),
                "gripper_open": decision.gripper_open,
                "duration": decision.duration,
                "refused": decision.refused,
                "dry_run": self.dry_run,
                "reasons": decision.reasons,
            }
        )
        return decision

    def _limit(self, raw: np.ndarray, current: np.ndarray, gripper_open: bool, decision: SafetyDecision) -> None:
        limits = self.limits
        position = raw[:3].copy()
        quaternion = raw[3:7] / np.linalg.norm(raw[3:7])
        clamped = np.clip(position, self._low, self._high)
        if not np.allclose(clamped, position):
            if limits.on_violation == "refuse":
                decision.reasons.append(f"target {np.round(position, 3).tolist()} is outside the workspace; refused")
                return
            decision.reasons.append(
                f"target clamped into the workspace: {np.round(position, 3).tolist()} -> "
                f"{np.round(clamped, 3).tolist()}"
            )
            position = clamped
        step = position - current[:3]
        distance = float(np.linalg.norm(step))
        if distance > limits.max_translation:
            if limits.on_violation == "refuse":
                decision.reasons.append(
                    f"move of {distance:.3f} m exceeds {limits.max_translation} m per keyframe; refused"
                )
                return
            position = current[:3] + step * (limits.max_translation / distance)
            decision.reasons.append(f"move shortened from {distance:.3f} m to {limits.max_translation} m")
            distance = limits.max_translation
        turn = Rotation.from_quat(current[3:7]).inv() * Rotation.from_quat(quaternion)
        angle = float(np.degrees(turn.magnitude()))
        if angle > limits.max_rotation_deg:
            if limits.on_violation == "refuse":
                decision.reasons.append(
                    f"turn of {angle:.1f} deg exceeds {limits.max_rotation_deg} deg per keyframe; refused"
                )
                return
            fraction = limits.max_rotation_deg / angle
            quaternion = Slerp([0, 1], Rotation.from_quat([current[3:7], quaternion]))([fraction]).as_quat()[0]
            decision.reasons.append(f"turn limited from {angle:.1f} to {limits.max_rotation_deg} deg")
            angle = limits.max_rotation_deg
        wanted_open = bool(raw[7] >= 0.5)
        now = time.monotonic()
        if wanted_open != gripper_open:
            if now - self._last_gripper_change < limits.gripper_min_interval:
                decision.reasons.append(
                    f"gripper change held back: the last one was {now - self._last_gripper_change:.2f} s ago "
                    f"(minimum {limits.gripper_min_interval} s)"
                )
                wanted_open = gripper_open
            else:
                self._last_gripper_change = now
        decision.target = np.concatenate([position, quaternion])
        decision.gripper_open = wanted_open
        decision.duration = max(distance / limits.max_speed, np.radians(angle) / limits.max_angular_speed)
        decision.refused = False

    def _audit(self, record: dict) -> None:
        record = {"time": time.time(), **record}
        logger.debug("safety: %s", record)
        if self.audit_path is not None:
            self.audit_path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.audit_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
