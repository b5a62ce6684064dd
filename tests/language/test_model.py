"""The TRC2 model: causality, the deferred hippocampal writes, saving and generation."""

from __future__ import annotations

import pytest
import torch

from cortico.language.configuration import TRC2Config
from cortico.language.modeling import TRC2ForCausalLM


def small_config(**overrides) -> TRC2Config:  # noqa: ANN003
    base = dict(
        vocab_size=40, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=48, thalamus_rank=8, thalamus_groups=2, memory_slots=16, memory_top_k=2,
        chunk_size=4, writes_per_step=4, max_position_embeddings=64,
    )  # fmt: skip
    return TRC2Config(**(base | overrides))


def filled_model(config: TRC2Config) -> TRC2ForCausalLM:
    """A model whose hippocampal memory holds entries (so reads really happen), in eval mode."""
    torch.manual_seed(0)
    model = TRC2ForCausalLM(config)
    for module in model.modules():  # make the zero-initialised thalamic gains matter
        if hasattr(module, "gain") and isinstance(module.gain, torch.nn.Linear):
            torch.nn.init.normal_(module.gain.weight, std=0.5)
    if model.hippocampus is not None:
        model.train()
        ids = torch.randint(5, 40, (4, 24))
        model(input_ids=ids, labels=ids).loss.backward()
        assert model.flush_memory_writes() > 0
    return model.eval()


@pytest.mark.parametrize(
    "switches",
    [{}, {"thalamus": False}, {"hippocampus": False}, {"num_experts": 3, "experts_top_k": 2}],
    ids=["full", "no-thalamus", "no-hippocampus", "experts"],
)
def test_changing_a_later_token_never_changes_earlier_outputs(switches: dict) -> None:
    model = filled_model(small_config(**switches))
    ids = torch.randint(5, 40, (2, 21))
    with torch.no_grad():
        reference = model(input_ids=ids).logits
        for t in (0, 3, 4, 7, 12, 19):  # chunk boundaries (chunk 4) and inside chunks
            changed = ids.clone()
            changed[:, t + 1 :] = torch.randint(5, 40, changed[:, t + 1 :].shape)
            logits = model(input_ids=changed).logits
            torch.testing.assert_close(logits[:, : t + 1], reference[:, : t + 1], rtol=1e-5, atol=1e-5)
            assert not torch.allclose(logits[:, t + 1 :], reference[:, t + 1 :])


def test_padding_does_not_change_the_real_tokens_outputs() -> None:
    model = filled_model(small_config())
    ids = torch.randint(5, 40, (1, 10))
    padded = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 10), torch.zeros(1, 6)], dim=1).long()
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=padded, attention_mask=mask).logits[:, :10],
            model(input_ids=ids).logits,
            atol=1e-5,
            rtol=1e-5,
        )


def test_the_critic_treats_the_end_of_the_answer_as_terminal() -> None:
    """The TD target of the last scored token is its reward alone: no bootstrap from a value never trained."""
    config = small_config(fast_discount=0.5, slow_discount=0.9)
    model = TRC2ForCausalLM(config)
    for head in (model.value_fast, model.value_slow):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, 10.0)  # every value is 10
    token_loss = torch.tensor([[1.0, 2.0, 0.0, 0.0]])
    counted = torch.tensor([[True, True, False, False]])  # the answer's last scored token is at 1
    loss, _ = model._critic(torch.randn(1, 5, config.hidden_size), token_loss, counted)
    expected = 0.0
    for discount in (0.5, 0.9):
        inner = -1.0 + discount * 10.0 - 10.0  # bootstraps from the next scored token
        last = -2.0 - 10.0  # terminal
        expected += (inner**2 + last**2) / 2
    torch.testing.assert_close(loss, torch.tensor(expected))


def test_memory_writes_wait_for_the_flush_after_backward() -> None:
    model = TRC2ForCausalLM(small_config()).train()
    memory = model.hippocampus
    before = memory.keys.clone()
    ids = torch.randint(5, 40, (2, 16))
    loss = model(input_ids=ids, labels=ids).loss
    assert memory.pending, "the forward pass stashes the surprising states"
    assert torch.equal(memory.keys, before) and not memory.filled.any(), "nothing is written before backward"
    loss.backward()
    assert torch.equal(memory.keys, before)
    written = model.flush_memory_writes()
    assert written == 4 and memory.filled.sum() == 4 and not memory.pending
    assert not torch.equal(memory.keys, before)


def test_replay_path_neither_reads_nor_writes_memory() -> None:
    model = filled_model(small_config()).train()
    ids = torch.randint(5, 40, (2, 16))
    model(input_ids=ids, labels=ids, plain=True)
    assert not model.hippocampus.pending
    with torch.no_grad():
        model.eval()
        plain = model(input_ids=ids, plain=True).logits
        full = model(input_ids=ids).logits
    assert not torch.allclose(plain[:, 4:], full[:, 4:]), "the full path reads the memory from the second chunk"
    torch.testing.assert_close(plain[:, :4], full[:, :4])


def test_save_and_load_round_trip_keeps_weights_and_memory(tmp_path) -> None:  # noqa: ANN001
    model = filled_model(small_config())
    model.save_pretrained(tmp_path)
    loaded = TRC2ForCausalLM.from_pretrained(tmp_path).eval()
    assert (tmp_path / "model.safetensors").is_file()
    torch.testing.assert_close(loaded.hippocampus.keys, model.hippocampus.keys)
    assert torch.equal(loaded.hippocampus.filled, model.hippocampus.filled)
    ids = torch.randint(5, 40, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert loaded.lm_head.weight.data_ptr() == loaded.embed.weight.data_ptr(), "embeddings stay tied"


def test_generate_greedy_matches_step_by_step_argmax() -> None:
    model = filled_model(small_config())
    prompt = torch.randint(5, 40, (1, 6))
    out = model.generate(prompt, max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert out.shape == (1, 11)
    ids = prompt
    with torch.no_grad():
        for _ in range(5):
            ids = torch.cat([ids, model(input_ids=ids).logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(out, ids)


def test_invalid_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="heads"):
        small_config(num_attention_heads=3)
    with pytest.raises(ValueError, match="injection_layer"):
        small_config(injection_layer=2)
    with pytest.raises(ValueError, match="thalamus_rank"):
        small_config(thalamus_rank=9)
