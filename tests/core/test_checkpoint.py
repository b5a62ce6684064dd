"""Training checkpoints: safetensors + JSON, atomic, and resuming gives the uninterrupted result."""

from __future__ import annotations

import pytest
import torch

from cortico.atomic import atomic_directory, recover_directory
from cortico.checkpoint import CheckpointError, ProgressCheckpoint, load_checkpoint, save_checkpoint


def _train(model, optimizer, generator, steps):
    for _ in range(steps):
        x = torch.randn(8, 4, generator=generator)
        loss = (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean() + 0.01 * torch.randn(()).abs()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2), torch.Generator().manual_seed(seed)


def test_resume_continues_the_same_run(tmp_path):
    model, optimizer, generator = _setup()
    _train(model, optimizer, generator, 20)
    reference = [p.detach().clone() for p in model.parameters()]

    model, optimizer, generator = _setup()
    _train(model, optimizer, generator, 8)
    save_checkpoint(tmp_path / "last", model=model, optimizer=optimizer, step=8, generator=generator, metadata={"a": 1})
    fresh_model, fresh_optimizer, fresh_generator = _setup(seed=123)  # different init: everything must be restored
    step, metadata = load_checkpoint(
        tmp_path / "last", model=fresh_model, optimizer=fresh_optimizer, generator=fresh_generator
    )
    assert step == 8 and metadata == {"a": 1}
    _train(fresh_model, fresh_optimizer, fresh_generator, 12)
    for expected, got in zip(reference, fresh_model.parameters()):
        assert torch.equal(expected, got)


def test_checkpoints_refuse_the_wrong_model_and_corrupt_files(tmp_path):
    model, optimizer, generator = _setup()
    save_checkpoint(tmp_path / "ckpt", model=model, optimizer=optimizer, step=1)
    with pytest.raises(CheckpointError, match="another model"):
        load_checkpoint(tmp_path / "ckpt", model=torch.nn.Linear(3, 3))
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "ckpt", model=model)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "nothing", model=model)
    assert not list(tmp_path.glob("*.pkl")) and not list((tmp_path / "ckpt").glob("*.pt"))


def test_atomic_directory_replaces_as_a_whole(tmp_path):
    target = tmp_path / "last"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("killed mid-write")
    assert (target / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    target.rename(tmp_path / "last.old")  # as if the process died between the two renames
    assert (recover_directory(target) / "a").read_text() == "1"


def test_progress_is_kept_every_few_steps_but_not_after_the_last(tmp_path):
    model, optimizer, generator = _setup()
    kept = ProgressCheckpoint(tmp_path / "progress", model=model, optimizer=optimizer, generator=generator, every=5)
    assert kept.start(12) == (0, {})
    for done in range(1, 13):
        _train(model, optimizer, generator, 1)
        kept.after(done, {"done": done})
    assert load_checkpoint(tmp_path / "progress", model=_setup()[0]) == (10, {"done": 10})
    assert ProgressCheckpoint(None, model=model, optimizer=optimizer).start(12) == (0, {})
    with pytest.raises(ValueError, match="positive number of steps, got 0"):
        ProgressCheckpoint(tmp_path, model=model, optimizer=optimizer, every=0)
