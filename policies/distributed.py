"""Data-parallel policy training on Ray Train workers (``cortico train --workers N``).

Every worker runs the same loop as in-process training (:func:`~cortico.policies.training.training_step`):
all workers draw the same global batch of indices from one seeded generator and each takes its share
(``indices[rank::N]``); gradients are averaged across workers (all-reduce) before clipping and the update,
so N workers take the step one process would take on the whole batch. Rank 0 reports checkpoints to Ray
Train (in the same ``pretrained_model/ + training_state/`` layout); when the run ends the newest one is
copied to ``RUN/checkpoints/<step>`` and ``last`` points at it, so ``cortico eval`` and ``load_policy`` read
it like any run. Run again with ``--resume`` and Ray Train hands the newest checkpoint back to the workers.

On a cluster, ``--data`` and ``--out`` must be on storage every node sees (NFS or similar) and cortico
must be installed on every node (see ``docs/ray.md``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import default_collate

from cortico.atomic import write_json_atomic
from cortico.checkpoint import load_checkpoint
from cortico.ray_runtime import RayOptions, clamp_workers, ray_session

if TYPE_CHECKING:
    from cortico.policies.training import TrainConfig

logger = logging.getLogger(__name__)

RAY_RUN_NAME = "ray_train"  # Ray Train's own storage inside the run directory (its checkpoints and state)


def average_gradients(parameters: list[torch.Tensor]) -> None:
    """Replace every gradient by its mean over the data-parallel workers (one flat all-reduce)."""
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for parameter, grad in zip(parameters, grads):
        count = grad.numel()
        parameter.grad = flat[offset : offset + count].view_as(grad).clone()
        offset += count


def _mean_over_workers(values: dict[str, float]) -> dict[str, float]:
    import torch.distributed as dist

    names = sorted(values)
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64)
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    return dict(zip(names, tensor.tolist()))


def worker_loop(settings: dict[str, Any]) -> None:
    """The per-worker training loop (runs inside a Ray Train worker)."""
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.perception.gaze import GazeModel
    from cortico.policies.base import to_device
    from cortico.policies.training import (
        TRAINING_STATE,
        TrainConfig,
        build_policy,
        draw_batch,
        make_optimizer,
        noise_seed,
        training_step,
        write_checkpoint,
    )

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    train = TrainConfig(**settings["train"])
    if train.batch_size % world:
        raise ValueError(f"the batch size ({train.batch_size}) must divide evenly over {world} workers")
    out = Path(settings["out"])
    dataset = KeyframeDataset(settings["data"], sample_steps=train.sample_steps, cache_mb=train.cache_mb)
    gaze = GazeModel.load(settings["gaze"]) if settings["gaze"] else None
    device = ray.train.torch.get_device()
    torch.manual_seed(train.seed)
    policy = build_policy(train, dataset, gaze, settings["resume_from"] or None).to(device)
    for tensor in policy.state_dict().values():  # identical start on every worker
        dist.broadcast(tensor, src=0)
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, train)
    batches = torch.Generator().manual_seed(train.seed)  # the same global batches on every worker
    noise = torch.Generator().manual_seed(noise_seed(train.seed, rank))  # this worker's augmentation draws
    generators = {"batches": batches, "noise": noise}
    start = 0
    checkpoint = ray.train.get_checkpoint()
    resume_from = settings["resume_from"]
    with checkpoint.as_directory() if checkpoint is not None else contextlib.nullcontext(resume_from) as directory:
        if directory:
            # rank 0's augmentation state is saved; the other ranks restore it too and then re-derive their own
            start, _ = load_checkpoint(Path(directory) / TRAINING_STATE, model=policy, optimizer=optimizer,
                                       generator=generators)  # fmt: skip
            if rank:
                noise.manual_seed(noise_seed(train.seed, rank) + start)
    share = train.batch_size // world
    policy.train()
    started = time.perf_counter()
    for step in range(start, train.steps):
        indices = draw_batch(dataset, train, batches)[rank::world]
        batch = to_device(default_collate([dataset[i] for i in indices]), device)
        losses = training_step(policy, optimizer, batch, noise, train, step, average_gradients if world > 1 else None)
        done = step + 1
        last = done == train.steps
        if done % train.log_every and done % train.checkpoint_every and not last:
            continue
        metrics = _mean_over_workers(losses) if world > 1 else losses
        seconds = time.perf_counter() - started
        metrics |= {"step": done, "samples_per_second": share * world * (done - start) / seconds,
                    "learning_rate": optimizer.param_groups[0]["lr"]}  # fmt: skip
        if rank == 0:
            with open(out / "log.jsonl", "a") as handle:
                handle.write(json.dumps(metrics) + "\n")
        if done % train.checkpoint_every == 0 or last:
            if rank == 0:
                with tempfile.TemporaryDirectory() as directory:
                    write_checkpoint(Path(directory), policy, optimizer, generators, done)
                    ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory),
                                     checkpoint_dir_name=f"checkpoint_{done:06d}")  # fmt: skip
            else:
                ray.train.report(metrics)
        else:
            ray.train.report(metrics)
    dataset.close()


def train_policy_distributed(
    data: str | Path,
    out: str | Path,
    train: TrainConfig,
    *,
    workers: int,
    use_gpu: bool = False,
    resume: bool = False,
    ray: RayOptions | None = None,
) -> dict[str, Any]:
    """Train on ``workers`` Ray Train workers; returns the same summary as in-process training."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.policies.training import CHECKPOINTS, check_run_directory, point_last_at, prepare_gaze_model, uses_gaze

    ray = ray or RayOptions()
    data, out = Path(data).resolve(), Path(out).resolve()
    if workers < 2:
        raise ValueError("data-parallel training needs at least 2 workers (1 trains in this process)")
    check_run_directory(out, train, resume)
    out.mkdir(parents=True, exist_ok=True)
    dataset = KeyframeDataset(data, sample_steps=train.sample_steps)
    gaze_dir = ""
    if uses_gaze(train):  # trained (or found) here once, then read by every worker
        prepare_gaze_model(data, out, train, dataset)
        gaze_dir = str(Path(train.gaze_model).resolve() if train.gaze_model else out / "gaze" / "model")
    write_json_atomic(out / "train_config.json", {"train": asdict(train), "data": str(data),
                                                  "dataset": dataset.describe(), "workers": workers})  # fmt: skip
    dataset.close()
    last = out / CHECKPOINTS / "last"
    resume_from = str(last.resolve()) if resume and last.exists() else ""
    with ray_session(ray.address, dashboard=ray.dashboard) as session:
        count = clamp_workers(workers, ray.cpus_per_worker, session.cpus)
        if count < 2:
            raise ValueError(f"only {count} worker fits on this Ray cluster; train with --workers 1")
        if train.batch_size % count:
            raise ValueError(f"--batch-size {train.batch_size} must be divisible by the {count} workers")
        trainer = TorchTrainer(
            worker_loop,
            train_loop_config={
                "train": asdict(train),
                "data": str(data),
                "out": str(out),
                "gaze": gaze_dir,
                "resume_from": resume_from,
            },  # fmt: skip
            scaling_config=ScalingConfig(
                num_workers=count, use_gpu=use_gpu, resources_per_worker={"CPU": ray.cpus_per_worker}
            ),  # fmt: skip
            run_config=RunConfig(
                name=RAY_RUN_NAME, storage_path=str(out), checkpoint_config=CheckpointConfig(num_to_keep=2)
            ),  # fmt: skip
        )
        started = time.perf_counter()
        result = trainer.fit()
        seconds = time.perf_counter() - started
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train finished without a checkpoint (see {out / RAY_RUN_NAME})")
    step = int(result.metrics["step"])
    target = out / CHECKPOINTS / f"{step:06d}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(result.checkpoint.path, target)
    point_last_at(out, target)
    losses = {k: v for k, v in result.metrics.items() if k not in ("step", "samples_per_second", "learning_rate")}
    return {"steps": step, "final_losses": losses, "seconds": seconds, "checkpoint": str(out / CHECKPOINTS / "last"),
            "workers": count, "samples_per_second": result.metrics["samples_per_second"]}  # fmt: skip
