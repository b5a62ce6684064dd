"""Position-aware pretraining of the gaze model from demonstrations, and its evaluation.

Supervision comes from the demos themselves: at every stored step, the next keyframe's target position
and the task object's position are projected into the wrist camera of that step (with its exact
calibration). The metric is the fixation's pixel error and the hit rate within r pixels on held-out
episodes, beside a baseline that always looks at the image centre.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from cortico.atomic import write_json_atomic
from cortico.checkpoint import load_checkpoint, save_checkpoint
from cortico.envs.camera_geometry import project_points
from cortico.envs.cameras import WRIST_CAMERA
from cortico.envs.dataset.index import DatasetError, DatasetIndex
from cortico.perception.gaze import GazeConfig, GazeModel, gaussian_heatmaps

logger = logging.getLogger(__name__)

OBJECT_STATE = slice(4, 7)  # Meta-World's state vector: position of the task's main object


@dataclass
class GazeSamples:
    """In-memory gaze supervision: images and projected targets of every used step (``N`` samples)."""

    wrist: torch.Tensor  # (N, 3, H, W) uint8
    static: torch.Tensor | None  # (N, 3, H, W) uint8
    targets: torch.Tensor  # (N, 2, 2) pixels (column, row) of [next keyframe target, object]
    visible: torch.Tensor  # (N, 2) bool
    instruction: torch.Tensor  # (N,) index into `instructions`
    episode: torch.Tensor  # (N,) index into the dataset index
    instructions: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.wrist.shape[0])


def build_gaze_samples(
    root: str | Path,
    episodes: list[int] | None = None,
    *,
    frame_stride: int = 1,
    static_camera: str | None = None,
) -> GazeSamples:
    """Read the wrist frames of ``episodes`` (indices in the index; default all) and project their targets."""
    root = Path(root)
    index = DatasetIndex.load(root)
    cameras = index.collection["signature"]["cameras"]
    for needed in [WRIST_CAMERA] + ([static_camera] if static_camera else []):
        if needed not in cameras:
            raise DatasetError(f"gaze training needs the {needed!r} camera; {root} has {cameras}")
    chosen = list(range(len(index.episodes))) if episodes is None else episodes
    wrist, static, targets, visible, instruction_ids, episode_ids = [], [], [], [], [], []
    instructions: list[str] = []
    for episode in chosen:
        entry = index.episodes[episode]
        if entry.instruction not in instructions:
            instructions.append(entry.instruction)
        with h5py.File(root / entry.file, "r") as f:
            keyframes = f["keyframes"][()]
            steps = f["frames/step"][()]
            pose = f["steps/gripper_pose"][()]
            state = f["steps/state"][()]
            group = f[f"frames/{WRIST_CAMERA}"]
            rgb, intrinsics, extrinsics = group["rgb"][()], group["intrinsics"][()], group["extrinsics"][()]
            static_rgb = f[f"frames/{static_camera}/rgb"][()] if static_camera else None
        size = rgb.shape[1]
        for frame in range(0, len(steps), frame_stride):
            step = int(steps[frame])
            if step >= keyframes[-1]:
                continue
            next_keyframe = int(keyframes[np.searchsorted(keyframes, step, side="right")])
            world = np.stack([pose[next_keyframe, :3], state[step, OBJECT_STATE]])
            uv, z = project_points(world, intrinsics[frame], extrinsics[frame])
            inside = (z > 0.01) & np.all((uv >= -0.5) & (uv <= size - 0.5), axis=1)
            wrist.append(rgb[frame])
            if static_rgb is not None:
                static.append(static_rgb[frame])
            targets.append(np.where(inside[:, None], uv, size / 2 - 0.5))
            visible.append(inside)
            instruction_ids.append(instructions.index(entry.instruction))
            episode_ids.append(episode)
    if not wrist:
        raise DatasetError(f"no gaze samples in {root} (episodes {chosen}): no stored frames before a keyframe")
    to_images = lambda frames: torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return GazeSamples(
        wrist=to_images(wrist),
        static=to_images(static) if static else None,
        targets=torch.from_numpy(np.stack(targets)).float(),
        visible=torch.from_numpy(np.stack(visible)),
        instruction=torch.tensor(instruction_ids),
        episode=torch.tensor(episode_ids),
        instructions=instructions,
    )


def split_episodes(index: DatasetIndex, validation_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic episode-level split (no frame of a validation episode is ever trained on)."""
    count = len(index.episodes)
    if count < 2:
        raise DatasetError(f"a train/validation split needs at least 2 episodes, the dataset has {count}")
    order = np.random.default_rng(seed).permutation(count)
    held_out = min(count - 1, max(1, round(validation_fraction * count)))
    return sorted(order[held_out:].tolist()), sorted(order[:held_out].tolist())


@dataclass(frozen=True)
class GazeTrainConfig:
    """Settings of ``cortico perception train-gaze``."""

    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    validation_fraction: float = 0.2
    seed: int = 0
    frame_stride: int = 1
    object_weight: float = 0.5
    eval_every: int = 250
    checkpoint_every: int = 250
    text_model: str = "minilm"
    device: str = "auto"
    model: GazeConfig = field(default_factory=GazeConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError(f"invalid gaze training settings: steps={self.steps}, batch={self.batch_size}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation fraction must be in (0, 1), got {self.validation_fraction}")


def learning_rate_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def gaze_loss(
    model: GazeModel, samples: GazeSamples, text_table: torch.Tensor, batch: torch.Tensor, object_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Heatmap cross-entropy on visible targets plus visibility classification for a batch of sample ids."""
    config = model.config
    device = next(model.parameters()).device
    output = model(*_inputs(model, samples, text_table, batch))
    heat_size = config.heatmap_size
    goal = gaussian_heatmaps(samples.targets[batch].to(device), config.image_size, heat_size, config.sigma)
    log_probs = output.logits.flatten(2).log_softmax(dim=-1)
    per_channel = -(goal.flatten(2) * log_probs).sum(-1)  # (B, 2)
    visible = samples.visible[batch].float().to(device)
    weights = torch.tensor([1.0, object_weight], device=device)
    heat_loss = (per_channel * visible * weights).sum() / visible.sum().clamp_min(1.0)
    visibility_loss = F.binary_cross_entropy_with_logits(output.visible_logits, visible)
    loss = heat_loss + 0.1 * visibility_loss
    scalars = {"loss": loss.item(), "heatmap": heat_loss.item(), "visibility": visibility_loss.item()}
    return loss, scalars


def _inputs(model: GazeModel, samples: GazeSamples, text_table: torch.Tensor, batch: torch.Tensor) -> tuple:
    """Model inputs of the samples ``batch``, on the model's device."""
    device = next(model.parameters()).device
    wrist = samples.wrist[batch].to(device).float() / 255.0
    text = text_table[samples.instruction[batch]].to(device) if model.config.text_dim else None
    static = samples.static[batch].to(device).float() / 255.0 if model.config.use_static_view else None
    return wrist, text, static


@torch.inference_mode()
def evaluate_gaze(
    model: GazeModel, samples: GazeSamples, text_table: torch.Tensor, batch_size: int = 256
) -> dict[str, Any]:
    """Fixation error and hit rates on the samples whose target is in view, beside the centre baseline."""
    model.eval()
    size = model.config.image_size
    fixations = []
    for start in range(0, len(samples), batch_size):
        batch = torch.arange(start, min(start + batch_size, len(samples)))
        fixations.append(model(*_inputs(model, samples, text_table, batch)).fixation.cpu())
    fixation = torch.cat(fixations)
    visible = samples.visible[:, 0]
    target = samples.targets[visible, 0]
    errors = (fixation[visible] - target).norm(dim=-1)
    centre = torch.full_like(target, size / 2 - 0.5)
    centre_errors = (centre - target).norm(dim=-1)
    radii = (size / 16, size / 8)
    report: dict[str, Any] = {"samples": len(samples), "visible_targets": int(visible.sum()), "image_size": size}
    for name, err in (("model", errors), ("centre_baseline", centre_errors)):
        report[name] = {
            "pixel_error_mean": float(err.mean()) if len(err) else float("nan"),
            "pixel_error_median": float(err.median()) if len(err) else float("nan"),
            **{
                f"hit_rate_within_{r:g}px": float((err <= r).float().mean()) if len(err) else float("nan")
                for r in radii
            },
        }
    return report


def train_gaze(
    data: str | Path, out: str | Path, config: GazeTrainConfig, *, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train the gaze model on a demo dataset; writes ``out/model`` (safetensors), checkpoints and metrics."""
    from tqdm import tqdm

    from cortico.perception.text_encoder import TextEncoder

    out = Path(out)
    checkpoint = out / "checkpoints" / "last"
    if out.exists() and any(out.iterdir()) and not resume:
        raise ValueError(f"{out} is not empty; pass --resume to continue its training or choose a new --out")
    index = DatasetIndex.load(data)
    train_ids, val_ids = split_episodes(index, config.validation_fraction, config.seed)
    stride = config.frame_stride
    train = build_gaze_samples(data, train_ids, frame_stride=stride, static_camera=_static(config))
    val = build_gaze_samples(data, val_ids, frame_stride=stride, static_camera=_static(config))
    size = train.wrist.shape[-1]
    model_config = (
        config.model if config.model.image_size == size else GazeConfig(**{**asdict(config.model), "image_size": size})
    )
    encoder = TextEncoder(config.text_model) if model_config.text_dim else None
    if encoder is not None:
        model_config = GazeConfig(**{**asdict(model_config), "text_dim": encoder.dim, "text_model": config.text_model})
    text_train = encoder.embed(train.instructions) if encoder else torch.zeros(len(train.instructions), 0)
    text_val = encoder.embed(val.instructions) if encoder else torch.zeros(len(val.instructions), 0)

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
    )
    model = GazeModel(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    start = 0
    if resume and checkpoint.exists():
        start, _ = load_checkpoint(checkpoint, model=model, optimizer=optimizer, generator=generator)
        logger.info("resumed gaze training at step %d", start)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "train_config.json",
        {
            **asdict(config),
            "model": asdict(model_config),
            "data": str(data),
            "train_episodes": train_ids,
            "val_episodes": val_ids,
        },
    )
    log_path = out / "log.jsonl"
    history: list[dict[str, Any]] = []
    bar = tqdm(total=config.steps, initial=start, desc="train-gaze", unit="step", disable=not progress)
    started = time.perf_counter()
    model.train()
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * learning_rate_factor(step, config.steps, config.warmup_steps)
        batch = torch.randint(len(train), (config.batch_size,), generator=generator)
        loss, scalars = gaze_loss(model, train, text_train, batch, config.object_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        bar.update(1)
        bar.set_postfix(loss=f"{scalars['loss']:.3f}")
        done = step + 1
        if done % config.eval_every == 0 or done == config.steps:
            report = evaluate_gaze(model, val, text_val)
            model.train()
            record = {"step": done, **scalars, "val_pixel_error": report["model"]["pixel_error_mean"]}
            history.append(record)
            with open(log_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
        if done % config.checkpoint_every == 0 or done == config.steps:
            save_checkpoint(checkpoint, model=model, optimizer=optimizer, step=done, generator=generator)
    bar.close()
    model.cpu().save(out / "model")
    report = evaluate_gaze(model, val, text_val)
    metrics = {
        "validation": report,
        "train_samples": len(train),
        "validation_samples": len(val),
        "seconds": time.perf_counter() - started,
        "history": history,
    }
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _static(config: GazeTrainConfig) -> str | None:
    return "front" if config.model.use_static_view else None


def evaluate_checkpoint(model_dir: str | Path, data: str | Path, episodes: list[int] | None = None) -> dict[str, Any]:
    """Evaluate a saved gaze model on a dataset (all episodes unless ``episodes`` is given)."""
    from cortico.perception.text_encoder import TextEncoder

    model = GazeModel.load(model_dir)
    samples = build_gaze_samples(data, episodes, static_camera="front" if model.config.use_static_view else None)
    if samples.wrist.shape[-1] != model.config.image_size:
        raise ValueError(
            f"the gaze model expects {model.config.image_size} px wrist images; {data} has {samples.wrist.shape[-1]} px"
        )
    if model.config.text_dim:
        text = TextEncoder(model.config.text_model).embed(samples.instructions)
    else:
        text = torch.zeros(len(samples.instructions), 0)
    return evaluate_gaze(model, samples, text)
