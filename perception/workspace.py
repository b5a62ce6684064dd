"""The workspace box that percepts are cropped to and that virtual views look at."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class WorkspaceBounds:
    """Axis-aligned box in the world frame (metres), validated on construction.

    The default covers Meta-World's table: every object, goal and keyframe target, plus a few millimetres of
    table surface (RVT and PerAct keep the table in view). It stops at y 0.96, before the 12-cm wall along
    the back of the table (y 0.98-1.0), which otherwise hid everything on the table from the ``front`` view.
    """

    low: tuple[float, float, float] = (-0.5, 0.3, -0.02)
    high: tuple[float, float, float] = (0.5, 0.96, 0.55)

    def __post_init__(self) -> None:
        low, high = np.asarray(self.low, dtype=float), np.asarray(self.high, dtype=float)
        if low.shape != (3,) or high.shape != (3,):
            raise ValueError(f"workspace bounds need 3 numbers each, got low={self.low}, high={self.high}")
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"workspace bounds must be finite, got low={self.low}, high={self.high}")
        if np.any(low >= high):
            axes = [axis for axis, bad in zip("xyz", low >= high) if bad]
            raise ValueError(
                f"workspace bounds need min < max on every axis; not so on {axes}: {self.low} vs {self.high}"
            )
        object.__setattr__(self, "low", tuple(float(v) for v in low))
        object.__setattr__(self, "high", tuple(float(v) for v in high))

    @property
    def center(self) -> np.ndarray:
        """Centre of the box."""
        return (np.asarray(self.low) + np.asarray(self.high)) / 2

    @property
    def half_size(self) -> float:
        """Half the longest side: the half-size of the smallest cube that holds the box."""
        return float(np.max(np.asarray(self.high) - np.asarray(self.low)) / 2)

    def contains(self, points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Boolean mask of the points ``(..., 3)`` inside the box."""
        if isinstance(points, torch.Tensor):
            low = torch.as_tensor(self.low, dtype=points.dtype, device=points.device)
            high = torch.as_tensor(self.high, dtype=points.dtype, device=points.device)
            return ((points >= low) & (points <= high)).all(dim=-1)
        return np.all((points >= np.asarray(self.low)) & (points <= np.asarray(self.high)), axis=-1)
