"""The egocentric gaze model: shapes, persistence, crops, training that beats the centre baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cortico.perception.gaze import GazeConfig, GazeModel, fixation_to_world, foveated_crops, gaussian_heatmaps
from cortico.perception.gaze_training import GazeTrainConfig, build_gaze_samples, gaze_loss, train_gaze


def test_forward_shapes_and_input_checks():
    model = GazeModel(GazeConfig(image_size=48, text_dim=8))
    out = model(torch.rand(3, 3, 48, 48), torch.rand(3, 8))
    assert out.logits.shape == (3, 2, 24, 24) and out.visible_logits.shape == (3, 2) and out.fixation.shape == (3, 2)
    assert torch.allclose(out.heatmaps().sum(dim=(-1, -2)), torch.ones(3, 2))
    with pytest.raises(ValueError, match="\\(B, 3, 48, 48\\)"):
        model(torch.rand(3, 3, 64, 64), torch.rand(3, 8))
    with pytest.raises(ValueError, match="instruction embeddings"):
        model(torch.rand(3, 3, 48, 48))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 3, 48, 48), float("nan")), torch.rand(1, 8))
    with pytest.raises(ValueError, match="multiple of 8"):
        GazeConfig(image_size=50)


def test_soft_argmax_recovers_a_peak():
    model = GazeModel(GazeConfig(image_size=64, text_dim=0))
    pixels = torch.tensor([[[20.0, 40.0], [5.0, 5.0]]])
    maps = gaussian_heatmaps(pixels, 64, 32, sigma=1.0)
    found = model.soft_argmax(torch.log(maps[:, 0]))
    assert torch.allclose(found, pixels[:, 0], atol=0.3)


def test_save_load_round_trip_and_corrupt_weights(tmp_path):
    model = GazeModel(GazeConfig(image_size=48, text_dim=4, use_static_view=True)).eval()
    images, text = torch.rand(2, 3, 48, 48), torch.rand(2, 4)
    model.save(tmp_path / "gaze")
    loaded = GazeModel.load(tmp_path / "gaze")
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    assert torch.equal(model(images, text, images).logits, loaded(images, text, images).logits)
    weights = tmp_path / "gaze" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        GazeModel.load(tmp_path / "gaze")
    with pytest.raises(FileNotFoundError):
        GazeModel.load(tmp_path / "missing")


def test_foveated_crops_centre_on_the_fixation():
    image = torch.zeros(1, 3, 64, 64)
    image[0, :, 40, 20] = 1.0  # one bright pixel at column 20, row 40
    crops = foveated_crops(image, torch.tensor([[20.0, 40.0]]), spans=(8, 32), output_size=8)
    assert crops.shape == (1, 2, 3, 8, 8)
    fovea = crops[0, 0, 0]
    assert fovea.max() > 0 and fovea[3:5, 3:5].sum() == fovea.sum()


def test_fixation_to_world_uses_the_wrist_depth(mt10_small):
    samples = build_gaze_samples(mt10_small, [0])
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset

    sample = KeyframeDataset(mt10_small, cameras=["wrist"])[0]
    frame = sample["points"][0]
    pixel = torch.tensor([[20.0, 30.0]])
    world, valid = fixation_to_world(pixel, sample["depth"], sample["intrinsics"], sample["extrinsics"])
    assert valid.all()
    assert torch.allclose(world[0], frame[30, 20], atol=1e-4)
    assert len(samples) > 0


def test_training_overfits_a_tiny_dataset(mt10_small):
    samples = build_gaze_samples(mt10_small, [0, 1])
    model = GazeModel(GazeConfig(image_size=48, text_dim=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = torch.arange(16)
    first = None
    for _ in range(60):
        loss, _ = gaze_loss(model, samples, torch.zeros(len(samples.instructions), 0), batch, 0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.6 * first


def test_trained_fixation_beats_the_centre_baseline_on_held_out_episodes(mt10_small, tmp_path):
    config = GazeTrainConfig(steps=160, batch_size=24, eval_every=80, checkpoint_every=80, frame_stride=2,
                             model=GazeConfig(image_size=48, width=16))  # fmt: skip
    metrics = train_gaze(mt10_small, tmp_path / "run", config, progress=False)
    report = metrics["validation"]
    assert report["visible_targets"] > 20
    assert report["model"]["pixel_error_mean"] < report["centre_baseline"]["pixel_error_mean"]
    assert report["model"]["hit_rate_within_6px"] > report["centre_baseline"]["hit_rate_within_6px"]
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert not set(saved["train_episodes"]) & set(saved["val_episodes"])
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="--resume"):
        train_gaze(mt10_small, tmp_path / "run", config, progress=False)
    # resuming a finished run loads its last checkpoint and only re-evaluates
    again = train_gaze(mt10_small, tmp_path / "run", config, resume=True, progress=False)
    assert np.isclose(again["validation"]["model"]["pixel_error_mean"], report["model"]["pixel_error_mean"])


def test_resumed_gaze_training_matches_an_uninterrupted_run(mt10_small, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from cortico.perception import gaze_training

    config = GazeTrainConfig(steps=20, batch_size=8, frame_stride=4, eval_every=10, checkpoint_every=10,
                             warmup_steps=2, model=GazeConfig(image_size=48, width=8, text_dim=0))  # fmt: skip
    train_gaze(mt10_small, tmp_path / "full", config, progress=False)

    save = gaze_training.save_checkpoint

    def save_then_die(*args, **kwargs):  # the process is killed right after its first checkpoint
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(gaze_training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_gaze(mt10_small, tmp_path / "split", config, progress=False)
    monkeypatch.setattr(gaze_training, "save_checkpoint", save)
    train_gaze(mt10_small, tmp_path / "split", config, resume=True, progress=False)
    full = load_file(tmp_path / "full" / "model" / "model.safetensors")
    split = load_file(tmp_path / "split" / "model" / "model.safetensors")
    assert all(torch.equal(full[k], split[k]) for k in full)
