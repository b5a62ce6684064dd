"""Action targets, heads and losses shared by every keyframe policy (RVT / RVT-2 conventions).

- Translation: one heatmap per virtual view, Gaussian target (``sigma`` pixels) at the target's projection,
  cross-entropy over pixels; the 3D point is the one maximising the views' heatmaps.
- Rotation: Euler angles (xyz, extrinsic), ``ROTATION_BINS`` bins of 5 degrees per axis, cross-entropy.
- Gripper open/close and ignore-collision: two-way classification each.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation
from torch import nn

from cortico.envs.contract import KeyframeAction

ROTATION_BINS = 72
ROTATION_RESOLUTION = 360.0 / ROTATION_BINS


def quaternion_to_bins(quaternions: torch.Tensor) -> torch.Tensor:
    """Euler-angle bin indices ``(B, 3)`` of quaternions ``(B, 4)`` (xyzw)."""
    euler = Rotation.from_quat(quaternions.detach().cpu().double().numpy()).as_euler("xyz", degrees=True)
    bins = np.floor((euler + 180.0) / ROTATION_RESOLUTION).astype(np.int64) % ROTATION_BINS
    return torch.from_numpy(bins).to(quaternions.device)


def bins_to_quaternion(bins: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(B, 4)`` (xyzw) at the centres of Euler bins ``(B, 3)``."""
    euler = (bins.detach().cpu().double().numpy() + 0.5) * ROTATION_RESOLUTION - 180.0
    quaternions = Rotation.from_euler("xyz", euler, degrees=True).as_quat()
    return torch.from_numpy(quaternions).float().to(bins.device)


class DiscreteActionHead(nn.Module):
    """Rotation bins, gripper and collision logits from a feature vector.

    With ``collision_probe`` the collision logits read the shared hidden features detached: its loss trains only
    its own linear layer (same parameters and outputs, so checkpoints load either way).
    """

    def __init__(self, in_features: int, hidden: int = 256, collision_probe: bool = False) -> None:
        super().__init__()
        self.collision_probe = collision_probe
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.rotation = nn.Linear(hidden, 3 * ROTATION_BINS)
        self.gripper = nn.Linear(hidden, 2)
        self.collision = nn.Linear(hidden, 2)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"rotation": (B, 3, 72), "gripper": (B, 2), "collision": (B, 2)}`` logits."""
        hidden = self.net(features)
        return {
            "rotation": self.rotation(hidden).view(-1, 3, ROTATION_BINS),
            "gripper": self.gripper(hidden),
            "collision": self.collision(hidden.detach() if self.collision_probe else hidden),
        }


def discrete_targets(actions: torch.Tensor) -> dict[str, torch.Tensor]:
    """Class targets of keyframe actions ``(B, 9)``."""
    return {
        "rotation": quaternion_to_bins(actions[:, 3:7]),
        "gripper": (actions[:, 7] >= 0.5).long(),
        "collision": (actions[:, 8] >= 0.5).long(),
    }


def discrete_losses(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cross-entropy of each discrete head."""
    return {
        "rotation": F.cross_entropy(logits["rotation"].reshape(-1, ROTATION_BINS), targets["rotation"].reshape(-1)),
        "gripper": F.cross_entropy(logits["gripper"], targets["gripper"]),
        "collision": F.cross_entropy(logits["collision"], targets["collision"]),
    }


def heatmap_targets(uv: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Normalised Gaussian heatmaps ``(B, V, size, size)`` centred on pixels ``uv (B, V, 2)``."""
    grid = torch.arange(size, dtype=uv.dtype, device=uv.device)
    dx = grid.view(1, 1, 1, -1) - uv[..., 0, None, None]
    dy = grid.view(1, 1, -1, 1) - uv[..., 1, None, None]
    maps = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    return maps / maps.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None]


def heatmap_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between per-view heatmap logits ``(B, V, H, W)`` and target distributions."""
    log_probs = logits.flatten(2).log_softmax(dim=-1)
    return -(targets.flatten(2) * log_probs).sum(-1).mean()


def heatmap_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Per-view softmax of heatmap logits ``(B, V, H, W)``."""
    return logits.flatten(2).softmax(dim=-1).view_as(logits)


def decode_actions(positions: torch.Tensor, logits: dict[str, torch.Tensor]) -> list[KeyframeAction]:
    """Keyframe actions from predicted positions ``(B, 3)`` and discrete logits."""
    quaternions = bins_to_quaternion(logits["rotation"].argmax(dim=-1)).cpu()
    gripper = logits["gripper"].argmax(dim=-1).cpu()
    collision = logits["collision"].argmax(dim=-1).cpu()
    return [
        KeyframeAction(
            position=positions[i].detach().cpu().double().numpy(),
            quaternion=quaternions[i].double().numpy(),
            gripper_open=bool(gripper[i]),
            ignore_collision=bool(collision[i]),
        )
        for i in range(positions.shape[0])
    ]
