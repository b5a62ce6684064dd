"""The egocentric gaze model: where in the wrist view the robot should look next.

A small encoder-decoder CNN reads the wrist (egocentric) image, optionally conditioned on a static view and
the instruction embedding (FiLM), and predicts two heatmaps over the wrist image: the next keyframe's
target position (the fixation) and the task-relevant object, each with a visibility logit. The fixation
drives the policy's dynamic stream: foveated crops of the wrist view around it, and its 3D point (through
the wrist depth) centres the zoomed second-stage virtual view.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HEATMAP_CHANNELS = ("target", "object")


@dataclass(frozen=True)
class GazeConfig:
    """Gaze model settings (saved beside the weights).

    Attributes:
        image_size: wrist image size the model expects (square).
        width: channels of the first encoder stage (later stages use 2x and 3x).
        text_dim: instruction embedding width; 0 disables language conditioning.
        text_model: the text encoder whose embeddings the model was trained with.
        use_static_view: also read a static camera image (its global feature conditions the decoder).
        sigma: Gaussian target width in heatmap pixels.
    """

    image_size: int = 64
    width: int = 24
    text_dim: int = 384
    text_model: str = "minilm"
    use_static_view: bool = False
    sigma: float = 1.5

    def __post_init__(self) -> None:
        if self.image_size % 8 or self.image_size < 32:
            raise ValueError(f"gaze image size must be a multiple of 8 and >= 32, got {self.image_size}")
        if self.width < 4 or self.text_dim < 0 or self.sigma <= 0:
            raise ValueError(f"invalid gaze config: {self}")

    @property
    def heatmap_size(self) -> int:
        """Heatmaps are predicted at half the image resolution."""
        return self.image_size // 2


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(4, cout),
        nn.GELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.GroupNorm(4, cout),
        nn.GELU(),
    )


@dataclass(frozen=True)
class GazeOutput:
    """Model outputs.

    Attributes:
        logits: ``(B, 2, h, h)`` heatmap logits (target, object) at ``h = image_size / 2``.
        visible_logits: ``(B, 2)`` whether the target / object is in the wrist view.
        fixation: ``(B, 2)`` expected target pixel (column, row) in wrist-image pixels (soft-argmax).
    """

    logits: torch.Tensor
    visible_logits: torch.Tensor
    fixation: torch.Tensor

    def heatmaps(self) -> torch.Tensor:
        """``(B, 2, h, h)`` probabilities, each channel summing to 1."""
        flat = self.logits.flatten(2).softmax(dim=-1)
        return flat.view_as(self.logits)


class GazeModel(nn.Module):
    """Egocentric gaze prediction (see module doc)."""

    def __init__(self, config: GazeConfig | None = None) -> None:
        super().__init__()
        self.config = config or GazeConfig()
        w = self.config.width
        self.stem = _block(3, w, 2)  # /2
        self.down1 = _block(w, 2 * w, 2)  # /4
        self.down2 = _block(2 * w, 3 * w, 2)  # /8
        condition_dim = self.config.text_dim + (3 * w if self.config.use_static_view else 0)
        self.static_encoder = (
            nn.Sequential(_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 3 * w, 2), nn.AdaptiveAvgPool2d(1))
            if self.config.use_static_view
            else None
        )
        self.film = nn.Linear(condition_dim, 2 * 3 * w) if condition_dim else None
        self.up1 = _block(3 * w + 2 * w, 2 * w, 1)  # at /4, with the skip
        self.up2 = _block(2 * w + w, w, 1)  # at /2, with the skip
        self.head = nn.Conv2d(w, len(HEATMAP_CHANNELS), 1)
        self.visible_head = nn.Linear(3 * w, len(HEATMAP_CHANNELS))
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(
        self, wrist: torch.Tensor, text: torch.Tensor | None = None, static: torch.Tensor | None = None
    ) -> GazeOutput:
        """Predict heatmaps from ``wrist (B, 3, H, W)`` in [0, 1], ``text (B, D)`` and ``static (B, 3, H, W)``."""
        size = self.config.image_size
        if wrist.dim() != 4 or wrist.shape[1] != 3 or wrist.shape[-2:] != (size, size):
            raise ValueError(f"wrist images must be (B, 3, {size}, {size}), got {tuple(wrist.shape)}")
        if not torch.isfinite(wrist).all():
            raise ValueError("wrist images contain NaN or inf values")
        x1 = self.stem(wrist * 2 - 1)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        conditions = []
        if self.config.text_dim:
            if text is None or text.shape != (wrist.shape[0], self.config.text_dim):
                got = None if text is None else tuple(text.shape)
                raise ValueError(f"this gaze model needs instruction embeddings (B, {self.config.text_dim}), got {got}")
            conditions.append(text)
        if self.static_encoder is not None:
            if static is None:
                raise ValueError("this gaze model reads a static view as well; pass static=(B, 3, H, W)")
            conditions.append(self.static_encoder(static * 2 - 1).flatten(1))
        if self.film is not None:
            gamma, beta = self.film(torch.cat(conditions, dim=1)).chunk(2, dim=1)
            x3 = x3 * (1 + gamma[..., None, None]) + beta[..., None, None]
        visible_logits = self.visible_head(x3.mean(dim=(2, 3)))
        y = F.interpolate(x3, size=x2.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up1(torch.cat([y, x2], dim=1))
        y = F.interpolate(y, size=x1.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up2(torch.cat([y, x1], dim=1))
        logits = self.head(y)
        return GazeOutput(logits=logits, visible_logits=visible_logits, fixation=self.soft_argmax(logits[:, 0]))

    def soft_argmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected pixel ``(B, 2)`` (column, row) in image pixels of heatmap logits ``(B, h, h)``."""
        batch, height, width = logits.shape
        probabilities = logits.flatten(1).softmax(dim=-1).view(batch, height, width)
        scale = self.config.image_size / height
        rows = (torch.arange(height, dtype=logits.dtype, device=logits.device) + 0.5) * scale - 0.5
        cols = (torch.arange(width, dtype=logits.dtype, device=logits.device) + 0.5) * scale - 0.5
        return torch.stack([(probabilities.sum(1) * cols).sum(-1), (probabilities.sum(2) * rows).sum(-1)], dim=-1)

    @torch.no_grad()
    def fixate(
        self, images: torch.Tensor, text: torch.Tensor | None = None, static: torch.Tensor | None = None
    ) -> tuple[GazeOutput, torch.Tensor]:
        """Gaze on wrist images of any square size ``(B, 3, S, S)`` in [0, 1].

        Returns the output and the fixation ``(B, 2)`` in those images' pixels (the model sees them resized
        to its own size).
        """
        size, native = self.config.image_size, images.shape[-1]
        small = F.interpolate(images, size=(size, size), mode="area") if native != size else images
        if static is not None and static.shape[-1] != size:
            static = F.interpolate(static, size=(size, size), mode="area")
        output = self(small, text, static)
        return output, (output.fixation + 0.5) * (native / size) - 0.5

    # ------------------------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically)."""
        from safetensors.torch import save_file

        from cortico.atomic import atomic_path, write_json_atomic

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp))
        write_json_atomic(directory / "config.json", {"type": "gaze", **asdict(self.config)})

    @classmethod
    def load(cls, directory: str | Path, *, frozen: bool = True) -> GazeModel:
        """Load a saved model; ``frozen`` puts it in eval mode with gradients off (the policy's default)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "model.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(f"{directory} is not a gaze model (needs config.json and model.safetensors)")
        raw = json.loads(config_path.read_text())
        if raw.pop("type", None) != "gaze":
            raise ValueError(f"{config_path} describes a {raw.get('type')!r} model, not a gaze model")
        model = cls(GazeConfig(**raw))
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{weights_path} is corrupt or truncated ({error})") from error
        model.load_state_dict(state)
        if frozen:
            model.eval().requires_grad_(False)
        return model


def gaussian_heatmaps(pixels: torch.Tensor, image_size: int, heatmap_size: int, sigma: float) -> torch.Tensor:
    """Normalised Gaussian targets ``(B, C, h, h)`` centred on image pixels ``(B, C, 2)`` (column, row)."""
    scale = heatmap_size / image_size
    centres = (pixels + 0.5) * scale - 0.5  # heatmap pixel coordinates
    grid = torch.arange(heatmap_size, dtype=pixels.dtype, device=pixels.device)
    dx = grid.view(1, 1, 1, -1) - centres[..., 0, None, None]
    dy = grid.view(1, 1, -1, 1) - centres[..., 1, None, None]
    maps = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    return maps / maps.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None]


def foveated_crops(
    images: torch.Tensor, fixation: torch.Tensor, spans: tuple[int, ...] = (16, 48), output_size: int = 32
) -> torch.Tensor:
    """Multi-scale crops centred on the fixation: ``(B, len(spans), C, output_size, output_size)``.

    ``spans`` are crop widths in input pixels: a small span gives a sharp fovea, a large one the context
    around it. Crops reaching past the border are zero-padded.
    """
    batch, channels, height, width = images.shape
    crops = []
    for span in spans:
        theta = torch.zeros(batch, 2, 3, dtype=images.dtype, device=images.device)
        theta[:, 0, 0] = span / width
        theta[:, 1, 1] = span / height
        theta[:, 0, 2] = (fixation[:, 0] + 0.5) / width * 2 - 1
        theta[:, 1, 2] = (fixation[:, 1] + 0.5) / height * 2 - 1
        grid = F.affine_grid(theta, (batch, channels, output_size, output_size), align_corners=False)
        crops.append(F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return torch.stack(crops, dim=1)


def fixation_to_world(
    fixation: torch.Tensor, depth: torch.Tensor, intrinsics: torch.Tensor, extrinsics: torch.Tensor, window: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D point of a fixation pixel through the wrist depth.

    Args:
        fixation: ``(B, 2)`` pixel (column, row).
        depth: ``(B, H, W)`` metres (0 = invalid); the nearest valid depth within ``window`` pixels is used.
        intrinsics: ``(B, 3, 3)``; extrinsics: ``(B, 4, 4)`` camera-to-world.

    Returns:
        ``(points (B, 3), valid (B,))``; points are 0 where no valid depth was found.
    """
    batch, height, width = depth.shape
    col = torch.floor(fixation[:, 0] + 0.5).long().clamp(0, width - 1)
    row = torch.floor(fixation[:, 1] + 0.5).long().clamp(0, height - 1)
    offsets = torch.arange(-window, window + 1, device=depth.device)
    rows = (row[:, None, None] + offsets[None, :, None]).clamp(0, height - 1)
    cols = (col[:, None, None] + offsets[None, None, :]).clamp(0, width - 1)
    samples = torch.arange(batch, device=depth.device)
    patch = depth[samples[:, None, None], rows, cols]  # (B, w, w)
    distance = (offsets[:, None] ** 2 + offsets[None, :] ** 2).float()
    score = torch.where(patch > 0, distance.expand_as(patch), torch.full_like(patch, float("inf")))
    best = score.flatten(1).argmin(dim=1)
    z = patch.flatten(1)[samples, best]
    valid = torch.isfinite(score.flatten(1).min(dim=1).values)
    homogeneous = torch.stack([fixation[:, 0], fixation[:, 1], torch.ones_like(fixation[:, 0])], dim=1)
    ray = torch.linalg.solve(intrinsics.float(), homogeneous.float()[..., None])
    camera_point = ray.squeeze(-1) * z[:, None]
    world = torch.einsum("bij,bj->bi", extrinsics[:, :3, :3].float(), camera_point) + extrinsics[:, :3, 3].float()
    return torch.where(valid[:, None], world, torch.zeros_like(world)), valid
