"""The multi-view transformer (RVT), decoding one heatmap per virtual view.

Patch tokens of every virtual view go through intra-view then cross-view attention with language tokens
(and optional extra tokens).

Tensor shapes: views ``(B, V, C, H, W)``; text tokens ``(B, L, Dt)`` with mask ``(B, L)``; proprioception
``(B, P)``; extra tokens ``(B, E, D)`` with mask ``(B, E)``. ``H = W = image_size``, ``h = H / patch``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


@dataclass(frozen=True)
class ViewTransformerConfig:
    """Size of the view transformer.

    Attributes:
        num_views: virtual views per sample.
        image_size: view size in pixels (a multiple of ``patch``).
        in_channels: channels per view pixel (RGB, depth, xyz, valid = 8).
        patch: patch size in pixels.
        dim: token width.
        heads: attention heads.
        intra_layers: layers attending within one view (0: patch tokens go straight to the cross layers).
        cross_layers: layers attending across views, language and extra tokens (at least one).
        text_dim: width of the text encoder's token features.
        proprio_dim: proprioceptive inputs (a policy sets it to its ``PolicyConfig.proprio_dim``).
        decoder_channels: channels of the full-resolution decoder features.
    """

    num_views: int = 3
    image_size: int = 64
    in_channels: int = 8
    patch: int = 8
    dim: int = 128
    heads: int = 4
    intra_layers: int = 2
    cross_layers: int = 3
    text_dim: int = 384
    proprio_dim: int = 2
    decoder_channels: int = 16

    def __post_init__(self) -> None:
        if self.intra_layers < 0 or self.cross_layers < 1:
            raise ValueError(
                f"intra_layers must be >= 0 and cross_layers >= 1 (views meet language only there), "
                f"got {self.intra_layers} and {self.cross_layers}"
            )
        if self.image_size % self.patch:
            raise ValueError(f"view size {self.image_size} must be a multiple of the patch size {self.patch}")
        if self.dim % self.heads:
            raise ValueError(f"token width {self.dim} must be divisible by the {self.heads} heads")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch


@dataclass
class ViewTransformerOutput:
    """Heatmaps and features.

    Attributes:
        heatmap_logits: ``(B, V, H, W)``.
        view_tokens: ``(B, V, h*h, D)`` after the intra-view layers (each view on its own).
        decoder_features: ``(B, V, decoder_channels, H, W)`` full-resolution features (local features).
        global_features: ``(B, 2 * D)`` max- and mean-pooled tokens after the cross-view layers.
    """

    heatmap_logits: torch.Tensor
    view_tokens: torch.Tensor
    decoder_features: torch.Tensor
    global_features: torch.Tensor


def _layers(config: ViewTransformerConfig, count: int) -> nn.Module:
    if count == 0:
        return nn.Identity()
    layer = nn.TransformerEncoderLayer(
        config.dim, config.heads, dim_feedforward=4 * config.dim, dropout=0.0, activation="gelu",
        batch_first=True, norm_first=True,
    )  # fmt: skip
    return nn.TransformerEncoder(layer, count, enable_nested_tensor=False)


ATTENTION_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def run_layers(
    layers: nn.Module, tokens: torch.Tensor, padding: torch.Tensor | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Encoder ``layers`` on ``tokens``, computed in ``dtype`` (their float32 weights cast for this call).

    bfloat16 is an inference option: on a CPU with native bfloat16 (AVX512-BF16, AMX) the attention layers run
    faster; the weights stay float32, so training and saved checkpoints are unchanged. Returns tokens in
    their own dtype.
    """
    options = {} if padding is None else {"src_key_padding_mask": padding}
    if dtype == tokens.dtype:
        return layers(tokens, **options)
    weights = {name: value.to(dtype) for name, value in layers.named_parameters()}
    return functional_call(layers, weights, (tokens.to(dtype),), options).to(tokens.dtype)


class ViewTransformer(nn.Module):
    """See module doc. ``extra_tokens_fn`` lets a caller build tokens from the intra-view features."""

    def __init__(self, config: ViewTransformerConfig) -> None:
        super().__init__()
        self.config = config
        c, d = config, config.dim
        self.patch_embed = nn.Conv2d(c.in_channels, d, c.patch, stride=c.patch)
        self.position = nn.Parameter(torch.zeros(1, 1, c.grid * c.grid, d))
        self.view_embedding = nn.Parameter(torch.zeros(1, c.num_views, 1, d))
        self.text_projection = nn.Linear(c.text_dim, d)
        self.proprio_projection = nn.Linear(c.proprio_dim, d)
        self.kind_embedding = nn.Parameter(torch.zeros(4, d))  # view, text, proprio, extra tokens
        self.intra = _layers(c, c.intra_layers)
        self.cross = _layers(c, c.cross_layers)
        self.norm = nn.LayerNorm(d)
        self.skip = nn.Sequential(nn.Conv2d(c.in_channels, c.decoder_channels, 3, padding=1), nn.GELU())
        self.upsample = nn.Linear(d, c.patch * c.patch * c.decoder_channels)
        self.refine = nn.Sequential(nn.Conv2d(2 * c.decoder_channels, c.decoder_channels, 3, padding=1), nn.GELU())
        self.heatmap = nn.Conv2d(c.decoder_channels, 1, 1)
        for parameter in (self.position, self.view_embedding, self.kind_embedding):
            nn.init.normal_(parameter, std=0.02)

    def forward(
        self,
        views: torch.Tensor,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        proprio: torch.Tensor,
        extra_tokens_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        attention_dtype: torch.dtype = torch.float32,
    ) -> ViewTransformerOutput:
        """Run the transformer; ``extra_tokens_fn(view_tokens)`` returns ``(tokens (B,E,D), mask (B,E))``.

        ``attention_dtype`` is the precision of the attention layers (see :func:`run_layers`); the rest stays float32.
        """
        c = self.config
        batch, num_views = views.shape[:2]
        if num_views != c.num_views or views.shape[2] != c.in_channels or views.shape[-1] != c.image_size:
            raise ValueError(
                f"views must be (B, {c.num_views}, {c.in_channels}, {c.image_size}, {c.image_size}), "
                f"got {tuple(views.shape)}"
            )
        flat = views.flatten(0, 1)  # (B*V, C, H, W)
        patches = self.patch_embed(flat).flatten(2).transpose(1, 2)  # (B*V, P, D)
        patches = patches.view(batch, num_views, -1, c.dim) + self.position + self.view_embedding
        tokens = run_layers(self.intra, patches.flatten(0, 1), dtype=attention_dtype)
        tokens = tokens.view(batch, num_views, -1, c.dim)  # (B, V, P, D)

        kinds = self.kind_embedding
        parts = [tokens.flatten(1, 2) + kinds[0]]
        masks = [torch.ones(batch, parts[0].shape[1], dtype=torch.bool, device=views.device)]
        parts.append(self.text_projection(text_tokens) + kinds[1])
        masks.append(text_mask.bool())
        parts.append(self.proprio_projection(proprio)[:, None] + kinds[2])
        masks.append(torch.ones(batch, 1, dtype=torch.bool, device=views.device))
        if extra_tokens_fn is not None:
            extra, extra_mask = extra_tokens_fn(tokens)
            parts.append(extra + kinds[3])
            masks.append(extra_mask.bool())
        sequence = torch.cat(parts, dim=1)
        padding = ~torch.cat(masks, dim=1)
        if batch == 1 and padding.any():
            # One sample (act()): dropping its padded tokens is the same attention without a mask, and the
            # masked softmax costs ~5% of a decision. Padding only follows the view tokens, which keep their place.
            sequence, padding = sequence[:, ~padding[0]], padding[:, ~padding[0]]
        fused = self.norm(run_layers(self.cross, sequence, padding if padding.any() else None, attention_dtype))
        view_count = num_views * tokens.shape[2]
        fused_views = fused[:, :view_count]
        valid = (~padding).float()[..., None]
        global_features = torch.cat(
            [
                fused.masked_fill(padding[..., None], float("-inf")).max(dim=1).values,
                (fused * valid).sum(1) / valid.sum(1),
            ],
            dim=-1,
        )

        grid = c.grid
        up = self.upsample(fused_views).view(batch * num_views, grid, grid, c.patch, c.patch, c.decoder_channels)
        up = up.permute(0, 5, 1, 3, 2, 4).reshape(batch * num_views, c.decoder_channels, c.image_size, c.image_size)
        features = self.refine(torch.cat([up, self.skip(flat)], dim=1))
        logits = self.heatmap(features).view(batch, num_views, c.image_size, c.image_size)
        return ViewTransformerOutput(
            heatmap_logits=logits,
            view_tokens=tokens,
            decoder_features=features.view(batch, num_views, c.decoder_channels, c.image_size, c.image_size),
            global_features=global_features,
        )


def sample_features(features: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear features at pixels: ``features (B, V, C, H, W)``, ``pixels (B, V, K, 2)`` -> ``(B, V, K, C)``."""
    batch, views, channels, height, width = features.shape
    grid = torch.stack([(pixels[..., 0] + 0.5) / width * 2 - 1, (pixels[..., 1] + 0.5) / height * 2 - 1], dim=-1)
    sampled = F.grid_sample(
        features.flatten(0, 1), grid.flatten(0, 1)[:, :, None, :], mode="bilinear", padding_mode="border",
        align_corners=False,
    )  # fmt: skip
    return sampled.squeeze(-1).transpose(1, 2).view(batch, views, -1, channels)


def tokens_to_maps(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """``(B, V, h*h, D)`` tokens as feature maps ``(B, V, D, h, h)``."""
    batch, views, _, dim = tokens.shape
    return tokens.transpose(2, 3).reshape(batch, views, dim, grid, grid)
