"""Training checkpoints in safetensors + JSON only (never pickle), written atomically, resumable exactly.

A checkpoint folder holds ``model.safetensors`` (weights), ``optimizer.safetensors`` (the optimizer's
tensors), ``rng.safetensors`` (torch's and the data generator's random states) and
``trainer_state.json`` (step, optimizer hyper-parameters and scalar state, user metadata). Resuming from
it continues the same loss curve as an uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cortico.atomic import atomic_directory, recover_directory, write_json_atomic

STATE_FILE = "trainer_state.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, corrupt, or made for another model."""


def save_checkpoint(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    step: int,
    generator: torch.Generator | dict[str, torch.Generator] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (a reader never sees a half-written one)."""
    directory = Path(directory)
    weights, aliases = _unique_tensors(model.state_dict())
    with atomic_directory(directory) as tmp:
        save_file(weights, str(tmp / "model.safetensors"))
        scalars: dict[str, Any] = {}
        if optimizer is not None:
            tensors, scalars = _flatten_optimizer(optimizer)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
        rng = {"torch": torch.get_rng_state()}
        rng |= {key: g.get_state() for key, g in _named_generators(generator).items()}
        save_file(rng, str(tmp / "rng.safetensors"))
        state = {"step": step, "optimizer": scalars, "metadata": metadata or {}, "aliases": aliases}
        write_json_atomic(tmp / STATE_FILE, state)
    return directory


def load_checkpoint(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | dict[str, torch.Generator] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Restore a checkpoint into ``model`` (and optimizer and generator); returns ``(step, metadata)``."""
    directory = recover_directory(directory)
    state_path = directory / STATE_FILE
    if not state_path.is_file():
        raise CheckpointError(f"{directory} is not a checkpoint ({STATE_FILE} is missing)")
    try:
        state = json.loads(state_path.read_text())
        weights = load_file(str(directory / "model.safetensors"))
        weights |= {alias: weights[original] for alias, original in state.get("aliases", {}).items()}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{directory} holds weights for another model "
                f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
            )
        if optimizer is not None:
            _restore_optimizer(optimizer, load_file(str(directory / "optimizer.safetensors")), state["optimizer"])
        rng = load_file(str(directory / "rng.safetensors"))
        torch.set_rng_state(rng["torch"])
        for key, g in _named_generators(generator).items():
            if key in rng:
                g.set_state(rng[key])
    except (SafetensorError, OSError, json.JSONDecodeError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{directory} is corrupt or incomplete ({type(error).__name__}: {error})") from error
    return int(state["step"]), dict(state.get("metadata", {}))


def _named_generators(generator: torch.Generator | dict[str, torch.Generator] | None) -> dict[str, torch.Generator]:
    """Keys of the random generators in ``rng.safetensors`` (one generator, or several by name)."""
    if generator is None:
        return {}
    if isinstance(generator, torch.Generator):
        return {"generator": generator}
    return {f"generator.{name}": g for name, g in generator.items()}


def _unique_tensors(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors to save, each storage once (tied weights), and ``{alias: saved name}`` for the others."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, value in state_dict.items():
        key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = value.detach().contiguous().cpu()
    return tensors, aliases


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into named tensors and JSON-able scalars."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalar_state: dict[str, dict[str, Any]] = {}
    for param_id, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalar_state.setdefault(str(param_id), {})[key] = value
    if not tensors:
        tensors["empty"] = torch.zeros(0)
    return tensors, {"param_groups": state_dict["param_groups"], "scalar_state": scalar_state}


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name == "empty":
            continue
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, entries in scalars["scalar_state"].items():
        state.setdefault(int(param_id), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


class ProgressCheckpoint:
    """Periodic checkpoints of one training loop in ``folder``, so that a killed run resumes mid-loop, exactly.

    ``start(steps)`` restores the last one kept (if any) into the model, optimizer and generators and returns
    the step to go on from with its metadata; ``after(done, metadata)`` saves every ``every`` completed steps
    (not after the last: the finished model is the caller's to keep, and the folder the caller's to remove once
    it is). With ``folder`` None nothing is saved or restored.
    """

    def __init__(
        self,
        folder: str | Path | None,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator | dict[str, torch.Generator] | None = None,
        every: int = 250,
    ) -> None:
        if every < 1:
            raise ValueError(f"checkpoint every must be a positive number of steps, got {every}")
        self.folder = None if folder is None else Path(folder)
        self.model, self.optimizer, self.generator, self.every = model, optimizer, generator, every
        self.steps = 0

    def start(self, steps: int) -> tuple[int, dict[str, Any]]:
        """``(step to go on from, metadata saved with it)``: ``(0, {})`` when nothing is kept."""
        self.steps = steps
        if self.folder is None or not recover_directory(self.folder).exists():
            return 0, {}
        step, metadata = load_checkpoint(self.folder, model=self.model, optimizer=self.optimizer,
                                         generator=self.generator)  # fmt: skip
        if not 0 < step < steps:
            raise CheckpointError(
                f"{self.folder} was saved at step {step}, which a loop of {steps} steps never leaves behind: "
                "it belongs to another run; delete it to start over"
            )
        return step, metadata

    def after(self, done: int, metadata: dict[str, Any] | None = None) -> None:
        """Save when ``done`` completed steps are a multiple of ``every`` and the loop is not over."""
        if self.folder is not None and done % self.every == 0 and done < self.steps:
            save_checkpoint(self.folder, model=self.model, optimizer=self.optimizer, step=done,
                            generator=self.generator, metadata=metadata)  # fmt: skip
