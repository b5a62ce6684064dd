"""Frame encoders: a global embedding (unit norm) and a few patch tokens per frame.

- :class:`ProbeFrameEncoder` (the default): a small CNN trained on simulator frames to predict what is in
  them (gripper and object positions, gripper state, the task), so its features carry what questions ask
  about; fast on a CPU.
- :class:`PixelFrameEncoder`: no training; downsampled pixels (a floor for comparisons and tests).
- :class:`PretrainedFrameEncoder`: any ``transformers`` vision model (DINOv2) from a local directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cortico.checkpoint import ProgressCheckpoint
from cortico.memory.records import MemoryInputError

PATCH_GRID = 2  # patch tokens per side: a clear frame costs PATCH_GRID**2 tokens
OBJECT_STATE = slice(4, 7)  # the object's xyz in the probe's regression targets (see ProbeEncoderConfig)


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Frames must be ``(N, H, W, 3)`` uint8."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MemoryInputError(
            f"frames must be a (N, H, W, 3) uint8 array, got {getattr(frames, 'shape', type(frames).__name__)} "
            f"{getattr(frames, 'dtype', '')}"
        )
    return frames


def _normalise(vectors: torch.Tensor) -> torch.Tensor:
    return F.normalize(vectors, dim=-1)


def perceive(encoder: Any, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Embeddings, tokens and perceived facts of frames from any encoder (no facts when it perceives none)."""
    if hasattr(encoder, "perceive"):
        return encoder.perceive(frames)
    embeddings, tokens = encoder.encode(frames)
    return embeddings, tokens, [{} for _ in range(len(embeddings))]


class PixelFrameEncoder:
    """Downsampled colour pixels as the embedding (8x8x3 = 192 values); patches from the four quadrants."""

    dim = 192

    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (N, D), tokens (N, 4, D))``, float32."""
        images = torch.from_numpy(check_frames(frames)).permute(0, 3, 1, 2).float() / 255.0
        small = F.adaptive_avg_pool2d(images, 8)
        embeddings = _normalise(small.flatten(1) - 0.5)
        quadrants = F.adaptive_avg_pool2d(images, 16).unfold(2, 8, 8).unfold(3, 8, 8)  # (N, 3, 2, 2, 8, 8)
        tokens = _normalise(quadrants.permute(0, 2, 3, 1, 4, 5).reshape(len(frames), 4, -1) - 0.5)
        return embeddings.numpy().astype(np.float32), tokens.numpy().astype(np.float32)


@dataclass(frozen=True)
class ProbeEncoderConfig:
    """Size of the probe encoder and what it predicts.

    Attributes:
        image_size: input frames are resized to this.
        dim: embedding width.
        num_tasks: task classes of the auxiliary classifier.
        state_dim: regressed quantities (gripper xyz, gripper open, object xyz, goal xyz = 10).
    """

    image_size: int = 64
    dim: int = 64
    num_tasks: int = 50
    state_dim: int = 10


class ProbeFrameEncoder(nn.Module):
    """A small CNN whose features are trained to predict the scene's state (see module doc)."""

    def __init__(self, config: ProbeEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or ProbeEncoderConfig()
        d = self.config.dim
        self.backbone = nn.Sequential(
            nn.Conv2d(3 + 2, 32, 3, stride=2, padding=1), nn.GELU(),  # RGB + pixel coordinates
            nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(48, d, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(d, d, 3, stride=2, padding=1),
        )  # fmt: skip
        self.state_head = nn.Linear(d, self.config.state_dim)
        self.task_head = nn.Linear(d, self.config.num_tasks)
        # the state head regresses standardised targets; these give them back in metres
        self.register_buffer("state_mean", torch.zeros(self.config.state_dim))
        self.register_buffer("state_std", torch.ones(self.config.state_dim))

    @property
    def dim(self) -> int:
        """Embedding width."""
        return self.config.dim

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images (N, 3, H, W)`` in [0, 1] -> (global (N, D), patches (N, 4, D)), before normalisation."""
        size = self.config.image_size
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="area")
        # pixel coordinates as two more channels (CoordConv): the pooled embedding then says where things are,
        # which a mean over translation-equivariant convolutions alone would forget
        axis = torch.linspace(-1.0, 1.0, size, device=images.device)
        coordinates = torch.stack(torch.meshgrid(axis, axis, indexing="xy")).expand(len(images), -1, -1, -1)
        maps = self.backbone(torch.cat([images * 2 - 1, coordinates], dim=1))
        patches = F.adaptive_avg_pool2d(maps, PATCH_GRID).flatten(2).transpose(1, 2)
        return maps.mean(dim=(2, 3)), patches

    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (N, D), tokens (N, 4, D))``, float32, unit norm."""
        embeddings, tokens, _ = self.perceive(frames)
        return embeddings, tokens

    @torch.no_grad()
    def perceive(self, frames: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """``encode``'s output plus what the probe sees in each frame: ``{"object_position": (x, y, z)}``.

        The object's position is the state head's estimate (perception, not simulator state), so memory can
        hold where things were without the reader decoding it from an embedding.
        """
        check_frames(frames)
        self.eval()
        embeddings, tokens, states = [], [], []
        for start in range(0, len(frames), batch_size):
            images = torch.from_numpy(frames[start : start + batch_size]).permute(0, 3, 1, 2).float() / 255.0
            pooled, patches = self.features(images)
            embeddings.append(_normalise(pooled))
            tokens.append(_normalise(patches))
            states.append(self.state_head(pooled) * self.state_std + self.state_mean)
        objects = torch.cat(states)[:, OBJECT_STATE].tolist()
        facts = [{"object_position": tuple(position)} for position in objects]
        return torch.cat(embeddings).numpy().astype(np.float32), torch.cat(tokens).numpy().astype(np.float32), facts

    def save(self, directory: str | Path) -> None:
        """``model.safetensors`` + ``config.json``."""
        from safetensors.torch import save_file

        from cortico.atomic import atomic_path, write_json_atomic

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp))
        write_json_atomic(directory / "config.json", {"type": "probe_frame_encoder", **asdict(self.config)})

    @classmethod
    def load(cls, directory: str | Path) -> ProbeFrameEncoder:
        """Load a saved encoder (eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        try:
            raw = json.loads((directory / "config.json").read_text())
            if raw.pop("type", None) != "probe_frame_encoder":
                raise MemoryInputError(f"{directory} does not hold a probe frame encoder")
            model = cls(ProbeEncoderConfig(**raw))
            model.load_state_dict(load_file(str(directory / "model.safetensors")))
        except (OSError, json.JSONDecodeError, SafetensorError, RuntimeError, TypeError) as error:
            raise MemoryInputError(f"cannot load a frame encoder from {directory}: {error}") from error
        return model.eval()


def train_probe_encoder(
    frames: np.ndarray,
    states: np.ndarray,
    tasks: np.ndarray,
    *,
    steps: int = 600,
    batch_size: int = 64,
    seed: int = 0,
    config: ProbeEncoderConfig | None = None,
    progress: bool = False,
    progress_folder: str | Path | None = None,
    checkpoint_every: int = 250,
) -> ProbeFrameEncoder:
    """Train the probe encoder to regress ``states (N, 10)`` and classify ``tasks (N,)`` from ``frames``.

    ``progress_folder`` keeps the training state every ``checkpoint_every`` steps, as in ``train_reader``.
    """
    from tqdm.auto import tqdm

    check_frames(frames)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = ProbeFrameEncoder(config)
    states = torch.from_numpy(np.asarray(states, dtype=np.float32))
    model.state_mean.copy_(states.mean(0))
    model.state_std.copy_(states.std(0, correction=0) + 1e-6)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    images = torch.from_numpy(frames).permute(0, 3, 1, 2)
    targets = (states - model.state_mean) / model.state_std
    labels = torch.from_numpy(tasks.astype(np.int64))
    kept = ProgressCheckpoint(progress_folder, model=model, optimizer=optimizer, generator=generator,
                              every=checkpoint_every)  # fmt: skip
    first, _ = kept.start(steps)
    model.train()
    for step in tqdm(range(first, steps), desc="train frame encoder", disable=not progress, initial=first, total=steps):
        batch = torch.randint(len(frames), (batch_size,), generator=generator)
        pooled, _ = model.features(images[batch].float() / 255.0)
        loss = F.mse_loss(model.state_head(pooled), targets[batch]) + F.cross_entropy(
            model.task_head(pooled), labels[batch]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * (step + 1) / steps))
        kept.after(step + 1)
    return model.eval()


class PretrainedFrameEncoder:
    """A ``transformers`` vision backbone (e.g. DINOv2 from a local directory): mean-pooled patch features."""

    def __init__(self, source: str | Path) -> None:
        from cortico.perception.backbones import PretrainedBackbone

        self.backbone = PretrainedBackbone(source).eval()
        self.dim = self.backbone.out_channels

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (N, D), tokens (N, 4, D))``."""
        images = torch.from_numpy(check_frames(frames)).permute(0, 3, 1, 2).float() / 255.0
        stride = self.backbone.stride
        size = max(stride, (images.shape[-1] // stride) * stride)
        maps = self.backbone(F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False))
        pooled = _normalise(maps.mean(dim=(2, 3)))
        patches = _normalise(F.adaptive_avg_pool2d(maps, PATCH_GRID).flatten(2).transpose(1, 2))
        return pooled.numpy().astype(np.float32), patches.numpy().astype(np.float32)
