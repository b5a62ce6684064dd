"""Text pairs as padded token tensors, and the exact-match score used everywhere in the language module.

A pair becomes ``[BOS] input [SEP] output [EOS]`` with labels only on ``output [EOS]``: the model is
scored on the answer, never on the prompt. Exact match under teacher forcing (every answer token is the
arg-max) is the same as greedy decoding being exactly right, at the cost of one forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from cortico.language.tasks import Example
from cortico.language.tokenizer import words

logger = logging.getLogger(__name__)
IGNORE = -100


@dataclass
class Encoded:
    """Right-padded ``input_ids``, ``labels`` (``-100`` off the answer) and ``attention_mask``, all ``(N, L)``."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, index: torch.Tensor | Sequence[int]) -> Encoded:
        """The rows ``index``, trimmed to their longest sequence."""
        index = torch.as_tensor(index, dtype=torch.long)
        length = int(self.attention_mask[index].sum(1).max()) if len(index) else 1
        return Encoded(self.input_ids[index, :length], self.labels[index, :length], self.attention_mask[index, :length])

    @property
    def tokens(self) -> int:
        """Non-padding tokens."""
        return int(self.attention_mask.sum())


def encode_pair(tokenizer: PreTrainedTokenizerFast, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of one pair; an over-long input is cut from the left so the question survives."""
    prompt, answer = words(tokenizer, example.input), words(tokenizer, example.output) + [tokenizer.eos_token_id]
    room = max_length - len(answer) - 2
    if room < 1:
        raise ValueError(f"answer {example.output!r} does not fit in max_length={max_length}")
    if len(prompt) > room:
        prompt = prompt[-room:]
    ids = [tokenizer.bos_token_id, *prompt, tokenizer.sep_token_id, *answer]
    labels = [IGNORE] * (len(prompt) + 2) + answer
    return ids, labels


def encode(tokenizer: PreTrainedTokenizerFast, examples: Sequence[Example], max_length: int = 64) -> Encoded:
    """Encode and right-pad ``examples``."""
    if not examples:
        raise ValueError("no examples to encode")
    pairs = [encode_pair(tokenizer, e, max_length) for e in examples]
    length = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), length), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(pairs), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    for row, (ids, label) in enumerate(pairs):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(label)] = torch.tensor(label)
        mask[row, : len(ids)] = 1
    return Encoded(input_ids, labels, mask)


def drop_words(
    data: Encoded,
    rate: float,
    unknown_id: int,
    generator: torch.Generator | None = None,
    draws: torch.Tensor | None = None,
) -> Encoded:
    """Word dropout: each prompt token (not BOS/SEP) becomes ``unknown_id`` with probability ``rate``.

    Trained this way, a parser cannot lean on one memorised word sequence: it learns to read every cue of
    a command, which is what carries it to phrasings it has never seen. ``draws`` (uniform numbers shaped
    like ``input_ids``) fixes the masks instead of ``generator``: a token is dropped where its draw is below ``rate``.
    """
    draws = torch.rand(data.input_ids.shape, generator=generator) if draws is None else draws
    drop = prompt_positions(data) & (draws < rate)
    return Encoded(data.input_ids.masked_fill(drop, unknown_id), data.labels, data.attention_mask)


def prompt_positions(data: Encoded) -> torch.Tensor:
    """Where the prompt's words are, ``(N, L)`` booleans (not BOS, SEP, the answer or padding)."""
    prompt = (data.labels == IGNORE) & (data.attention_mask == 1)
    prompt[:, 0] = False  # BOS
    prompt &= torch.roll(data.labels, -1, dims=1) == IGNORE  # SEP is the last prompt token before the answer
    return prompt


def concatenate(parts: Sequence[Encoded]) -> Encoded:
    """One padded set from several."""
    length = max(p.input_ids.shape[1] for p in parts)

    def pad(t: torch.Tensor, value: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, length - t.shape[1]), value=value)

    return Encoded(
        torch.cat([pad(p.input_ids, 0) for p in parts]),
        torch.cat([pad(p.labels, IGNORE) for p in parts]),
        torch.cat([pad(p.attention_mask, 0) for p in parts]),
    )


@torch.no_grad()
def answer_log_probs(model: PreTrainedModel, data: Encoded, final: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's summed log-probability of its answer tokens and how many there are, ``(N,)`` each.

    With ``final=False`` the closing EOS is not scored: the answer is a prefix of a longer one.
    """
    logits = model(input_ids=data.input_ids, attention_mask=data.attention_mask).logits[:, :-1]
    target = data.labels[:, 1:]
    scored = target != IGNORE
    if not final:
        scored &= target != model.config.eos_token_id
    picked = logits.log_softmax(-1).gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return (picked * scored).sum(1), scored.sum(1)


@torch.no_grad()
def exact_match(model: PreTrainedModel, data: Encoded, batch_size: int = 128) -> float:
    """Fraction of examples whose whole answer is the model's arg-max (= greedy decoding is exactly right)."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        batch = data.select(range(start, min(start + batch_size, len(data))))
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        predicted = logits[:, :-1].argmax(-1)
        target = batch.labels[:, 1:]
        scored = target != IGNORE
        correct += int(((predicted == target) | ~scored).all(dim=1).sum())
    model.train(was_training)
    return correct / len(data)
