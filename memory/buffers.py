"""Frame memories under a strict token budget: curvature-aware retention (CurveStream) and the baselines.

Every memory keeps ``MemoryItem`` s whose token costs never sum above ``budget``: a clear frame costs its
patch tokens, a fuzzy frame one token (its global embedding). Budgets are in tokens; a budget of N frames
is N times the clear cost.

- :class:`CurvatureMemory`: score = motion + lambda * curvature of the embedding trajectory, online K-sigma
  thresholds from exponential statistics; clear above the upper threshold (and at question frames), fuzzy
  between the thresholds, discarded below; FIFO eviction when over budget.
- :class:`UniformMemory`: every frame at a stride; when full, drop every other frame and double the stride.
- :class:`FifoMemory`: the newest frames.
- :class:`MergeMemory`: ToMe / MovieChat-style: when full, merge the most similar adjacent pair.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from cortico.memory.records import (
    CLEAR,
    FUZZY,
    Evidence,
    FrameRecord,
    MemoryItem,
    check_budget,
    check_frame,
    check_question_time,
)


class BudgetedMemory:
    """Shared bookkeeping: input checks, the retained items, the budget invariant and statistics.

    Args:
        budget: tokens the memory may hold.
        clear_tokens: tokens of a clear frame (its patch tokens).
    """

    name = "base"

    def __init__(self, budget: int, clear_tokens: int = 4) -> None:
        self.clear_tokens = clear_tokens
        self.budget = check_budget(budget, clear_tokens)
        self.items: deque[MemoryItem] = deque()
        self.used = 0
        self.peak = 0
        self.frames_seen = 0
        self.admitted = {CLEAR: 0, FUZZY: 0}
        self._dim: int | None = None
        self._last_time: float | None = None

    def write(self, frame: FrameRecord, question_arrives: bool = False) -> None:
        """Check the frame, let the policy decide what to keep, then enforce the budget."""
        check_frame(frame, self._dim, self._last_time)
        self._dim, self._last_time = frame.embedding.shape[0], frame.time
        self.frames_seen += 1
        self._admit(frame, question_arrives)
        self._enforce_budget()
        if self.used > self.budget:
            raise AssertionError(f"{self.name} memory holds {self.used} tokens over its budget {self.budget}")
        self.peak = max(self.peak, self.used)

    def _admit(self, frame: FrameRecord, question_arrives: bool) -> None:
        raise NotImplementedError

    def resize(self, budget: int) -> None:
        """Set a new budget (a memory that shares its budget lends or takes back tokens) and evict to fit it."""
        self.budget = check_budget(budget, self.clear_tokens)
        self._enforce_budget()

    def _enforce_budget(self) -> None:
        """Default: evict the oldest items (FIFO) until the memory fits."""
        while self.used > self.budget:
            self._pop_oldest()

    def _append(self, frame: FrameRecord, fidelity: str) -> None:
        vectors = frame.tokens if fidelity == CLEAR else frame.embedding[None]
        item = MemoryItem(frame.index, frame.time, fidelity, vectors.astype(np.float32), dict(frame.facts))
        self.items.append(item)
        self.used += item.cost
        self.admitted[fidelity] += 1

    def _pop_oldest(self) -> MemoryItem:
        item = self.items.popleft()
        self.used -= item.cost
        return item

    def query(self, time: float, question_embedding: np.ndarray | None = None) -> Evidence:
        """Everything retained (frame memories return their whole content; retrieval is the hippocampus's)."""
        check_question_time(time, self._last_time)
        return Evidence(time, list(self.items), [], path="all")

    def stats(self) -> dict[str, Any]:
        """Budget use and what happened to the frames."""
        return {
            "memory": self.name,
            "budget_tokens": self.budget,
            "tokens": self.used,
            "peak_tokens": self.peak,
            "frames_seen": self.frames_seen,
            "items": len(self.items),
            "clear_admitted": self.admitted[CLEAR],
            "fuzzy_admitted": self.admitted[FUZZY],
            "discarded_on_arrival": self.frames_seen - self.admitted[CLEAR] - self.admitted[FUZZY],
        }


@dataclass(frozen=True)
class CurvatureConfig:
    """CurveStream's hyper-parameters (the paper's defaults; ``ema`` is not given there).

    Attributes:
        curvature_weight: lambda in ``score = motion + lambda * curvature``.
        k_low, k_high: K-sigma multipliers of the fuzzy and clear thresholds.
        ema: factor of the exponential mean and variance of the score.
        still_epsilon: displacements shorter than this count as no motion (a still robot): curvature 0.
    """

    curvature_weight: float = 0.2
    k_low: float = 0.0
    k_high: float = 1.0
    ema: float = 0.95
    still_epsilon: float = 1e-4


class CurvatureScore:
    """Online motion + curvature score of an embedding trajectory with K-sigma thresholds."""

    def __init__(self, config: CurvatureConfig | None = None) -> None:
        self.config = config or CurvatureConfig()
        self._previous: list[np.ndarray] = []
        self.mean: float | None = None
        self.variance = 0.0

    @staticmethod
    def _cosine(a: np.ndarray, b: np.ndarray) -> float:
        denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(a @ b) / denominator if denominator > 0 else 1.0

    def update(self, embedding: np.ndarray) -> tuple[float, float, float, float, float]:
        """Add a frame; returns ``(motion, curvature, score, low threshold, high threshold)``."""
        c = self.config
        history = self._previous
        motion = 1.0 - self._cosine(embedding, history[-1]) if history else 0.0
        curvature = 0.0
        if len(history) >= 2:
            d1, d2 = history[-1] - history[-2], embedding - history[-1]
            if np.linalg.norm(d1) > c.still_epsilon and np.linalg.norm(d2) > c.still_epsilon:
                curvature = 1.0 - self._cosine(d1, d2)
        score = motion + c.curvature_weight * curvature
        # exponential statistics with the current score included first (as the paper specifies)
        if self.mean is None:
            self.mean, self.variance = score, 0.0
        else:
            self.mean = c.ema * self.mean + (1 - c.ema) * score
            self.variance = c.ema * self.variance + (1 - c.ema) * (score - self.mean) ** 2
        sigma = float(np.sqrt(self.variance))
        self._previous = [*history[-1:], embedding]
        return motion, curvature, score, self.mean + c.k_low * sigma, self.mean + c.k_high * sigma


class CurvatureMemory(BudgetedMemory):
    """CurveStream: curvature-aware clear / fuzzy / discard routing with FIFO eviction (see module doc)."""

    name = "curvature"

    def __init__(self, budget: int, clear_tokens: int = 4, config: CurvatureConfig | None = None) -> None:
        super().__init__(budget, clear_tokens)
        self.scorer = CurvatureScore(config)
        self.last_route: str = ""

    def _admit(self, frame: FrameRecord, question_arrives: bool) -> None:
        _, _, score, low, high = self.scorer.update(frame.embedding)
        first = self.frames_seen == 1
        if question_arrives or first or score >= high:
            self.last_route = CLEAR
        elif score >= low:
            self.last_route = FUZZY
        else:
            self.last_route = "discard"
            return
        self._append(frame, self.last_route)


class FifoMemory(BudgetedMemory):
    """The newest frames, all clear."""

    name = "fifo"

    def _admit(self, frame: FrameRecord, question_arrives: bool) -> None:
        self._append(frame, CLEAR)


class UniformMemory(BudgetedMemory):
    """Uniform sampling over the whole past with bounded size: halve and double the stride when full."""

    name = "uniform"

    def __init__(self, budget: int, clear_tokens: int = 4) -> None:
        super().__init__(budget, clear_tokens)
        self.stride = 1

    def _admit(self, frame: FrameRecord, question_arrives: bool) -> None:
        if frame.index % self.stride == 0:
            self._append(frame, CLEAR)

    def _enforce_budget(self) -> None:
        while self.used > self.budget:
            self.stride *= 2
            kept = [item for item in self.items if item.index % self.stride == 0]
            if len(kept) == len(self.items):  # nothing on the new grid to drop: fall back to the oldest
                kept = list(self.items)[1:]
            self.items = deque(kept)
            self.used = sum(item.cost for item in self.items)


class MergeMemory(BudgetedMemory):
    """Similarity merging (ToMe / MovieChat): when over budget, average the most similar adjacent pair."""

    name = "merge"

    def _admit(self, frame: FrameRecord, question_arrives: bool) -> None:
        self._append(frame, CLEAR)

    def _enforce_budget(self) -> None:
        while self.used > self.budget and len(self.items) > 1:
            directions = np.stack([i.direction for i in self.items])
            similarity = np.einsum("nd,nd->n", directions[:-1], directions[1:])
            k = int(np.argmax(similarity))
            a, b = self.items[k], self.items[k + 1]
            merged = MemoryItem(b.index, b.time, CLEAR, ((a.vectors + b.vectors) / 2).astype(np.float32),
                                {**a.facts, **b.facts, "merged_from": a.index})  # fmt: skip
            self.items[k] = merged
            del self.items[k + 1]
            self.used += merged.cost - a.cost - b.cost
        while self.used > self.budget:
            self._pop_oldest()
