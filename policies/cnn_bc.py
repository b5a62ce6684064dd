"""Image-based behaviour cloning baseline: a CNN over the real cameras' RGB-D images.

One shared CNN encodes every camera's RGB + depth image; the pooled features of all cameras, the
instruction embedding and the proprioception go through an MLP. Translation is classified into bins per
axis over the workspace (cross-entropy, like the view policies' heatmaps); rotation, gripper and collision
use the same heads as every other policy. Training augments images with random shifts (RVT's SE(3) scene
augmentation needs a point cloud, which this baseline does not use).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cortico.envs.contract import KeyframeAction
from cortico.policies.action_heads import DiscreteActionHead, decode_actions, discrete_losses, discrete_targets
from cortico.policies.base import KeyframePolicy, PolicyConfig, proprioception


@dataclass(frozen=True)
class CNNConfig(PolicyConfig):
    """CNN behaviour-cloning settings.

    Attributes:
        width: channels of the last CNN stage.
        position_bins: translation bins per axis over the workspace.
        hidden: MLP width.
        shift_pixels: largest random image shift in training.
    """

    type: ClassVar[str] = "cnn"
    width: int = 96
    position_bins: int = 100
    hidden: int = 256
    shift_pixels: int = 4

    def without_augmentation(self) -> CNNConfig:
        """No random image shifts in training."""
        return dataclasses.replace(self, shift_pixels=0)


class CNNPolicy(KeyframePolicy):
    """See module doc."""

    config_class: ClassVar[type[PolicyConfig]] = CNNConfig

    def __init__(self, config: CNNConfig | None = None) -> None:
        config = config or CNNConfig()
        super().__init__(config)
        w = config.width
        layers, channels = [], 4
        for out in (w // 4, w // 2, w, w):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(4, out), nn.GELU()]
            channels = out
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.camera_embedding = nn.Parameter(torch.zeros(len(config.cameras), 4 * w))
        features = len(config.cameras) * 4 * w + 384 + config.proprio_dim
        self.trunk = nn.Sequential(
            nn.Linear(features, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.hidden), nn.GELU()
        )
        self.position = nn.Linear(config.hidden, 3 * config.position_bins)
        self.head = DiscreteActionHead(config.hidden, collision_probe=config.collision_probe)

    def _features(self, batch: dict[str, Any], augment: bool, generator: torch.Generator | None) -> torch.Tensor:
        rgb = batch["rgb"].permute(0, 1, 4, 2, 3).float() / 255.0  # (B, V, 3, H, W)
        depth = batch["depth"].float()[:, :, None].clamp(0.0, 3.0) / 3.0
        images = torch.cat([rgb, depth], dim=2)
        batch_size, views = images.shape[:2]
        flat = images.flatten(0, 1)
        if augment:
            flat = _random_shift(flat, self.config.shift_pixels, generator)
        encoded = self.encoder(flat * 2 - 1).view(batch_size, views, -1) + self.camera_embedding
        text = self.encode_text(batch["instruction"]).pooled
        return self.trunk(torch.cat([encoded.flatten(1), text, proprioception(batch, self.config)], dim=1))

    def _bins(self, positions: torch.Tensor) -> torch.Tensor:
        low, high = self.config.workspace_tensors(positions.device)
        unit = ((positions - low) / (high - low)).clamp(0.0, 1.0 - 1e-6)
        return (unit * self.config.position_bins).long()

    def _centres(self, bins: torch.Tensor) -> torch.Tensor:
        low, high = self.config.workspace_tensors(bins.device)
        return low + (bins.float() + 0.5) / self.config.position_bins * (high - low)

    def loss(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Translation-bin, rotation, gripper and collision cross-entropies."""
        hidden = self._features(batch, self.training, generator)
        actions = batch["action"].float()
        logits = self.position(hidden).view(-1, 3, self.config.position_bins)
        losses = {"position": F.cross_entropy(logits.flatten(0, 1), self._bins(actions[:, :3]).flatten())}
        losses.update(discrete_losses(self.head(hidden), discrete_targets(actions)))
        losses["total"] = sum(losses.values())
        return losses

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[KeyframeAction]:
        """Most likely bin per axis, and the discrete heads."""
        hidden = self._features(batch, False, None)
        logits = self.position(hidden).view(-1, 3, self.config.position_bins)
        return decode_actions(self._centres(logits.argmax(dim=-1)), self.head(hidden))


def _random_shift(images: torch.Tensor, pixels: int, generator: torch.Generator | None) -> torch.Tensor:
    """Shift each image by up to ``pixels`` in x and y (replicate padding), as in DrQ."""
    if pixels <= 0:
        return images
    count, _, height, width = images.shape
    padded = F.pad(images, (pixels,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * pixels + 1, (count, 2), generator=generator)  # CPU generator: indices only
    return torch.stack([padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(offsets.tolist())])
