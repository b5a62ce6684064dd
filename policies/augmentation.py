"""SE(3) scene augmentation (RVT): move the whole point cloud and the target keyframe together.

A random yaw about the vertical axis through the workspace centre and a random translation are applied to
every point and to the target pose, so the policy sees the same task in many placements. Draws that would
push the target out of the workspace are redrawn (then left unaugmented).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.spatial.transform import Rotation

from cortico.perception.workspace import WorkspaceBounds


@dataclass(frozen=True)
class SceneAugmentation:
    """Ranges of the random scene motion (uniform in ``[-range, +range]``)."""

    translation: tuple[float, float, float] = (0.1, 0.1, 0.05)
    yaw_degrees: float = 20.0
    attempts: int = 10

    @classmethod
    def none(cls) -> SceneAugmentation:
        """No motion: every draw is the identity."""
        return cls(translation=(0.0, 0.0, 0.0), yaw_degrees=0.0)

    def sample(
        self, actions: torch.Tensor, bounds: WorkspaceBounds, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(rotation (B, 3, 3), translation (B, 3))`` keeping every target inside ``bounds``."""
        batch = actions.shape[0]
        rotation = torch.eye(3).repeat(batch, 1, 1)
        translation = torch.zeros(batch, 3)
        pivot = torch.as_tensor(bounds.center, dtype=torch.float32)
        limits = torch.tensor(self.translation)
        pending = torch.ones(batch, dtype=torch.bool)
        for _ in range(self.attempts):
            yaw = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(self.yaw_degrees)
            shift = (torch.rand(batch, 3, generator=generator) * 2 - 1) * limits
            candidate = _yaw_matrices(yaw)
            moved = torch.einsum("bij,bj->bi", candidate, actions[:, :3] - pivot) + pivot + shift
            accept = pending & bounds.contains(moved)
            rotation[accept], translation[accept] = (
                candidate[accept],
                (pivot - candidate[accept] @ pivot + shift[accept]),
            )
            pending &= ~accept
            if not pending.any():
                break
        return rotation, translation


def _yaw_matrices(yaw: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    zeros, ones = torch.zeros_like(yaw), torch.ones_like(yaw)
    return torch.stack([cos, -sin, zeros, sin, cos, zeros, zeros, zeros, ones], dim=1).view(-1, 3, 3)


def transform_points(points: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Apply ``p -> R p + t`` to points ``(B, N, 3)``."""
    return torch.einsum("bij,bnj->bni", rotation, points) + translation[:, None, :]


def transform_actions(actions: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Move keyframe actions ``(B, 9)``: position by ``R p + t``, orientation by ``R``."""
    moved = actions.clone()
    moved[:, :3] = torch.einsum("bij,bj->bi", rotation, actions[:, :3]) + translation
    turned = Rotation.from_matrix(rotation.detach().cpu().double().numpy()) * Rotation.from_quat(
        actions[:, 3:7].detach().cpu().double().numpy()
    )
    moved[:, 3:7] = torch.from_numpy(turned.as_quat()).float().to(actions.device)
    return moved
