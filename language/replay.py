"""Replay consolidation: a recent ring and a long-term reservoir, and an online controller driven by forgetting.

The controller watches the model's accuracy on small probe sets of the tasks it has already learned. When
the measured forgetting (best probe score so far minus the current one, averaged over past tasks) is above
its target it raises the replay weight, the replay batch size and the long-term fraction (multiplicatively
or by a step, clipped to bounds); below the target it lowers them, so replay costs little when nothing is
being forgotten.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

import numpy as np
import torch

from cortico.language.data import Encoded, concatenate


class ReplayBuffers:
    """Examples seen in training: the most recent ``recent`` in a ring, a uniform sample of all in a reservoir.

    Args:
        capacity: examples held in total (the experience-replay baseline gets the same number).
        recent_fraction: share of ``capacity`` given to the ring (0: a pure reservoir, classic experience replay).
    """

    def __init__(self, capacity: int, recent_fraction: float = 0.25, seed: int = 0) -> None:
        if capacity < 1 or not 0 <= recent_fraction < 1:
            raise ValueError("capacity must be >= 1 and recent_fraction in [0, 1)")
        self.recent_capacity = int(round(capacity * recent_fraction))
        self.long_capacity = capacity - self.recent_capacity
        self.recent: deque[Encoded] = deque(maxlen=max(self.recent_capacity, 1))
        self.long_term: list[Encoded] = []
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return (len(self.recent) if self.recent_capacity else 0) + len(self.long_term)

    def add(self, batch: Encoded) -> None:
        """Offer every row of ``batch`` to both stores (reservoir sampling keeps a uniform sample of history)."""
        for row in range(len(batch)):
            example = batch.select([row])
            if self.recent_capacity:
                self.recent.append(example)
            self.seen += 1
            if len(self.long_term) < self.long_capacity:
                self.long_term.append(example)
            else:
                slot = int(self.rng.integers(self.seen))
                if slot < self.long_capacity:
                    self.long_term[slot] = example

    def sample(self, size: int, long_term_fraction: float = 1.0) -> Encoded | None:
        """``size`` examples, ``long_term_fraction`` of them from the reservoir (the rest from the ring)."""
        if size < 1 or len(self) == 0:
            return None
        from_long = int(round(size * long_term_fraction)) if self.recent_capacity and self.recent else size
        picked: list[Encoded] = []
        if self.long_term:
            picked += [self.long_term[i] for i in self.rng.integers(len(self.long_term), size=from_long)]
        if self.recent_capacity and self.recent and size - from_long > 0:
            picked += [self.recent[i] for i in self.rng.integers(len(self.recent), size=size - from_long)]
        return concatenate(picked) if picked else None


@dataclass
class ControllerConfig:
    """Bounds and steps of the replay controller (forgetting is measured in probe accuracy, 0..1)."""

    target: float = 0.02
    up: float = 1.5
    down: float = 0.85
    weight: tuple[float, float, float] = (1.0, 0.25, 4.0)  # start, low, high
    batch_size: tuple[int, int, int] = (16, 4, 64)
    batch_step: int = 8
    long_term_fraction: tuple[float, float, float] = (0.75, 0.25, 1.0)
    fraction_step: float = 0.1


class ReplayController:
    """Raises or lowers replay (weight, batch size, long-term fraction) from measured forgetting."""

    def __init__(self, config: ControllerConfig | None = None) -> None:
        self.config = config or ControllerConfig()
        self.weight = self.config.weight[0]
        self.batch_size = self.config.batch_size[0]
        self.long_term_fraction = self.config.long_term_fraction[0]
        self.best: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    def forgetting(self, scores: dict[str, float]) -> float:
        """Mean drop from each probed task's best score so far (updates the bests)."""
        drops = []
        for task, score in scores.items():
            best = max(self.best.get(task, score), score)
            self.best[task] = best
            drops.append(best - score)
        return float(np.mean(drops)) if drops else 0.0

    def update(self, scores: dict[str, float]) -> float:
        """Take probe scores of the past tasks, adapt, and return the measured forgetting."""
        c = self.config
        forgetting = self.forgetting(scores)
        if forgetting > c.target:
            self.weight = min(self.weight * c.up, c.weight[2])
            self.batch_size = min(self.batch_size + c.batch_step, c.batch_size[2])
            self.long_term_fraction = min(self.long_term_fraction + c.fraction_step, c.long_term_fraction[2])
        else:
            self.weight = max(self.weight * c.down, c.weight[1])
            self.batch_size = max(self.batch_size - c.batch_step // 2, c.batch_size[1])
            self.long_term_fraction = max(self.long_term_fraction - c.fraction_step / 2, c.long_term_fraction[1])
        self.history.append({"forgetting": forgetting, **self.state()})
        return forgetting

    def state(self) -> dict[str, float]:
        """The current replay settings."""
        return {"weight": self.weight, "batch_size": self.batch_size, "long_term_fraction": self.long_term_fraction}

    def config_dict(self) -> dict:
        """The controller's configuration (for reports)."""
        return asdict(self.config)


def replay_loss(model: torch.nn.Module, batch: Encoded) -> torch.Tensor:
    """The next-token loss of a replay batch through the plain path (no hippocampal feedback or writes)."""
    return model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels, plain=True
    ).lm_loss
