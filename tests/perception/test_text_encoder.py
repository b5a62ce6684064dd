"""The text encoder with the real packaged all-MiniLM-L6-v2 weights, and a CLIP text tower from a config."""

from __future__ import annotations

import logging

import pytest
import torch

from cortico.envs.task_catalog import SUITES, TASKS
from cortico.perception.text_encoder import TextEncoder


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_paraphrases_of_a_command_are_closer_than_other_tasks(encoder):
    tasks = SUITES["mt10"]
    texts = [text for task in tasks for text in TASKS[task].instructions]
    labels = torch.tensor([i for i, task in enumerate(tasks) for _ in TASKS[task].instructions])
    embeddings = encoder.embed(texts)
    similarity = embeddings @ embeddings.T
    own_wins = 0
    for i in range(len(texts)):
        own = labels == labels[i]
        own[i] = False
        others = [similarity[i, labels == j].mean() for j in range(len(tasks)) if j != labels[i]]
        own_wins += int(similarity[i, own].mean() > max(others))
    assert own_wins / len(texts) >= 0.75, f"only {own_wins}/{len(texts)} paraphrases are nearest to their own task"
    for j in range(len(tasks)):  # on average, every task's paraphrases agree more with each other
        inside = similarity[labels == j][:, labels == j]
        outside = similarity[labels == j][:, labels != j]
        assert (inside.sum() - inside.trace()) / (inside.numel() - len(inside)) > outside.mean()


def test_features_shapes_cache_and_normalisation(encoder):
    features = encoder.encode(["open the drawer", "pick up the puck and place it at the goal"])
    assert features.tokens.shape[0] == 2 and features.tokens.shape[2] == 384 == encoder.dim
    assert features.mask[0].sum() < features.mask[1].sum()
    assert torch.allclose(features.pooled.norm(dim=-1), torch.ones(2), atol=1e-5)
    before = len(encoder._cache)
    again = encoder.encode("open the drawer")
    assert len(encoder._cache) == before
    assert torch.equal(again.pooled[0], features.pooled[0])


def test_bad_instructions_and_models_are_refused(encoder, tmp_path, caplog):
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError, match="instruction"):
            encoder.encode(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextEncoder("./no/such/model")
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEncoder(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="cortico.perception.text_encoder"):
        long = encoder.encode(" ".join(["open the drawer"] * 40))
    assert long.tokens.shape[1] == encoder.max_length and "truncated" in caplog.text


def test_a_clip_text_tower_is_a_configuration_away(tmp_path, encoder):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=encoder.tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, projection_dim=24, max_position_embeddings=64,
        bos_token_id=101, eos_token_id=102, pad_token_id=0,
    )  # fmt: skip
    CLIPTextModelWithProjection(config).save_pretrained(tmp_path)
    encoder.tokenizer.save_pretrained(tmp_path)
    clip = TextEncoder(str(tmp_path))
    features = clip.encode(["open the drawer", "close the window"])
    assert clip.dim == 24 and features.pooled.shape == (2, 24) and features.tokens.shape[-1] == 32
