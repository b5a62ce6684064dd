"""The fused, optionally augmented scene that view-based policies render their virtual views from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from cortico.perception.point_cloud import fuse_batch
from cortico.perception.workspace import WorkspaceBounds
from cortico.policies.augmentation import SceneAugmentation, transform_actions, transform_points


@dataclass
class Scene:
    """A batch of fused clouds and their (moved) target actions.

    Clouds are ``(B, N, 3)`` with colours and validity, targets ``(B, 9)`` when known, and the rigid motion
    applied to both is ``p -> rotation @ p + translation``.
    """

    points: torch.Tensor
    colors: torch.Tensor
    mask: torch.Tensor
    actions: torch.Tensor | None
    rotation: torch.Tensor
    translation: torch.Tensor

    def move(self, world_points: torch.Tensor) -> torch.Tensor:
        """Apply the scene's motion to other world points ``(B, 3)`` (e.g. the gaze fixation)."""
        return torch.einsum("bij,bj->bi", self.rotation, world_points) + self.translation

    def clearance(self, query: torch.Tensor) -> torch.Tensor:
        """Distance ``(B,)`` from each query point ``(B, 3)`` to the nearest real point of its cloud (inf if none)."""
        distances = (self.points.float() - query[:, None, :].float()).norm(dim=-1)
        return distances.masked_fill(~self.mask, float("inf")).amin(dim=1)


def build_scene(
    batch: dict[str, Any],
    bounds: WorkspaceBounds,
    augmentation: SceneAugmentation | None = None,
    generator: torch.Generator | None = None,
) -> Scene:
    """Fuse the batch's cameras; with ``augmentation`` (training), move cloud and target together."""
    points, colors, mask = fuse_batch(batch["points"], batch["rgb"], batch["depth"], bounds)
    batch_size = points.shape[0]
    actions = batch["action"].float() if "action" in batch else None
    device = points.device
    rotation = torch.eye(3, device=device).repeat(batch_size, 1, 1)
    translation = torch.zeros(batch_size, 3, device=device)
    if augmentation is not None and actions is not None:
        rotation, translation = (t.to(device) for t in augmentation.sample(actions.cpu(), bounds, generator))
        points = transform_points(points, rotation, translation)
        mask = mask & bounds.contains(points)
        actions = transform_actions(actions, rotation, translation)
    return Scene(points, colors, mask, actions, rotation, translation)
