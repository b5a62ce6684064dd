"""The probe frame encoder: what it perceives comes back in metres, and survives a save/load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cortico.memory.frame_encoder import (
    OBJECT_STATE,
    PATCH_GRID,
    PixelFrameEncoder,
    PretrainedFrameEncoder,
    ProbeEncoderConfig,
    ProbeFrameEncoder,
    perceive,
    train_probe_encoder,
)
from cortico.memory.records import MemoryInputError


def _scenes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a red square on grey; the state's object xyz is where the square is (x, y in metres, z fixed)."""
    rng = np.random.default_rng(seed)
    frames = np.full((count, 32, 32, 3), 90, np.uint8)
    states = np.zeros((count, 10), np.float32)
    for i in range(count):
        row, column = rng.integers(2, 26, size=2)
        frames[i, row : row + 5, column : column + 5] = (220, 30, 30)
        states[i, OBJECT_STATE] = (-0.3 + 0.6 * column / 26, 0.4 + 0.5 * row / 26, 0.02)
    return frames, states


def test_the_probe_perceives_where_the_object_is_in_metres_and_keeps_it_through_save_and_load(tmp_path: Path) -> None:
    frames, states = _scenes(512, 0)
    small = ProbeEncoderConfig(image_size=16, num_tasks=1)
    encoder = train_probe_encoder(
        frames, states, np.zeros(len(frames), np.int64), steps=500, batch_size=32, config=small
    )
    test_frames, test_states = _scenes(64, 1)
    embeddings, tokens, seen = encoder.perceive(test_frames)
    estimates = np.array([facts["object_position"] for facts in seen])
    error = np.abs(estimates - test_states[:, OBJECT_STATE]).mean(axis=0)
    spread = test_states[:, OBJECT_STATE].std(axis=0)
    assert (error[:2] < 0.5 * spread[:2]).all(), (error, spread)  # far better than guessing the mean, in metres
    assert abs(estimates[:, 2].mean() - 0.02) < 0.01  # a constant comes back as itself (standardised, then undone)
    assert np.allclose(embeddings, encoder.encode(test_frames)[0]) and tokens.shape == (64, 4, encoder.dim)

    encoder.save(tmp_path / "probe")
    loaded = ProbeFrameEncoder.load(tmp_path / "probe")
    assert [f["object_position"] for f in loaded.perceive(test_frames)[2]] == [f["object_position"] for f in seen]

    weights = load_file(str(tmp_path / "probe" / "model.safetensors"))
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("state_")}, str(tmp_path / "probe" / "model.safetensors")
    )
    with pytest.raises(MemoryInputError, match="cannot load a frame encoder"):
        ProbeFrameEncoder.load(tmp_path / "probe")


def test_an_encoder_that_perceives_nothing_gives_empty_facts() -> None:
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    embeddings, tokens, seen = perceive(PixelFrameEncoder(), frames)
    assert seen == [{}, {}, {}] and embeddings.shape == (3, PixelFrameEncoder.dim)


def test_an_encoder_killed_mid_training_goes_on_from_its_kept_progress_to_the_same_encoder(tmp_path: Path) -> None:
    frames, states = _scenes(64, 0)
    settings = {"steps": 7, "batch_size": 8, "config": ProbeEncoderConfig(image_size=16, num_tasks=1),
                "checkpoint_every": 3}  # fmt: skip
    tasks = np.zeros(len(frames), np.int64)
    uninterrupted = train_probe_encoder(frames, states, tasks, **settings)
    train_probe_encoder(frames, states, tasks, progress_folder=tmp_path / "progress", **settings)
    assert json.loads((tmp_path / "progress" / "trainer_state.json").read_text())["step"] == 6
    # another seed: had it trained from the start it would differ; what was kept decides
    resumed = train_probe_encoder(frames, states, tasks, progress_folder=tmp_path / "progress", seed=1, **settings)
    for mine, theirs in zip(resumed.state_dict().values(), uninterrupted.state_dict().values()):
        assert torch.equal(mine, theirs)


def test_a_pretrained_encoder_pools_the_backbone_into_unit_embeddings_and_patch_tokens(tiny_vision_model: Path) -> None:
    encoder = PretrainedFrameEncoder(tiny_vision_model)
    frames, _ = _scenes(3, 0)  # 32 px, four 8-px patches a side
    embeddings, tokens = encoder.encode(frames)
    assert embeddings.shape == (3, encoder.dim) and tokens.shape == (3, PATCH_GRID**2, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(tokens, axis=2), 1.0, rtol=1e-5)
    maps = encoder.backbone(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0)
    expected = torch.nn.functional.normalize(maps.mean(dim=(2, 3)), dim=-1).numpy()
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)
    assert not np.allclose(embeddings[0], embeddings[1]), "different scenes, different embeddings"
    embeddings_again, _, facts = perceive(encoder, frames)
    np.testing.assert_array_equal(embeddings_again, embeddings)
    assert facts == [{}, {}, {}]  # it perceives no object position: no facts
    odd, _ = encoder.encode(np.zeros((1, 30, 30, 3), np.uint8))  # resized to the patch size's multiple below
    assert odd.shape == (1, encoder.dim)
    with pytest.raises(MemoryInputError):
        encoder.encode(np.zeros((1, 32, 32, 3), np.float32))
