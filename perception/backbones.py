"""Visual backbones for the static stream: a small CNN trained from scratch, or a pretrained model.

Both map images ``(B, 3, H, W)`` in [0, 1] to a feature map ``(B, C, h, w)``. A pretrained backbone
(DINOv2 or any ``transformers`` vision model that returns patch tokens) loads from a local directory or a
hub id; nothing is downloaded unless the user asks for a hub id on a connected machine.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cortico.registry import Registry

BACKBONES: Registry[type] = Registry("visual backbone")


class ConvBackbone(nn.Module):
    """A small strided CNN (the default; trained with the policy). Output stride 8."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        layers, channels = [], in_channels
        for out in (width // 2, width, width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GroupNorm(8, out), nn.GELU()]
            channels = out
        self.net = nn.Sequential(*layers)
        self.out_channels = width
        self.stride = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, width, H/8, W/8)``."""
        return self.net(images)


class PretrainedBackbone(nn.Module):
    """A ``transformers`` vision model (e.g. DINOv2) whose patch tokens become a feature map.

    Args:
        source: local model directory or hub id.
        frozen: keep the pretrained weights fixed (the usual choice for the static stream).
    """

    def __init__(self, source: str | Path, frozen: bool = True) -> None:
        super().__init__()
        from transformers import AutoModel

        path = Path(source).expanduser()
        local = path.exists()
        if str(source).startswith((".", "/", "~")) and not local:
            raise FileNotFoundError(f"backbone directory {source} does not exist")
        try:
            self.model = AutoModel.from_pretrained(str(path) if local else str(source), local_files_only=local)
        except (OSError, ValueError) as error:  # no weights there, or a folder that is not a model's
            raise FileNotFoundError(f"could not load backbone {source!r}: {error}") from error
        config = self.model.config
        self.out_channels = int(config.hidden_size)
        self.stride = int(getattr(config, "patch_size", 14))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        if frozen:
            self.model.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, hidden, H/patch, W/patch)`` (class and register tokens dropped)."""
        batch, _, height, width = images.shape
        if height % self.stride or width % self.stride:
            raise ValueError(f"image size {height}x{width} must be a multiple of the patch size {self.stride}")
        tokens = self.model(pixel_values=(images - self.mean) / self.std).last_hidden_state
        rows, cols = height // self.stride, width // self.stride
        patches = tokens[:, -rows * cols :]  # patch tokens come last, after the class and register tokens
        return patches.transpose(1, 2).reshape(batch, -1, rows, cols)


BACKBONES.register("conv", ConvBackbone)
BACKBONES.register("pretrained", PretrainedBackbone)
