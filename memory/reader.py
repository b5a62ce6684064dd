"""A small trainable reader that answers multiple-choice questions from memory evidence.

Tokens: the question (its text embedding), the current frame ("now": the agent always sees the present), every
retained memory item (its patch tokens, or its global embedding when fuzzy) with its age and what the agent
knew about itself then (gripper command and position, instruction), and every note (pooled embedding, time
span, gripper changes and where it last closed, success, instruction). A two-layer transformer reads them;
each option is scored against the pooled result, plus pointer scores: the question attends over the read
tokens and each option is compared with the text (instruction) of the tokens it attends to, so "which object
did you work with two tasks ago" can copy the answer from the right memory instead of memorising every
pairing. Three more pointers work the same way with other contents of the attended tokens: how many tasks ago
the oldest task a token covers was (a merged note covers several), so "how many tasks had you finished" is
read off the oldest memory rather than counted by the transformer; the token's picture, so "where was the
object at the start of the previous task" compares each region with the frame the question points at; and the
gripper position the token records (where it was at a frame, where it last closed in a note), so "where was
the gripper when it last closed" compares each region with that position (a feature marks the token with the
newest close the evidence shows: a note's, or a closed frame whose predecessor in memory was open). The
object position the frame encoder perceived in a token's frame and a flag on each task's earliest frame in
the evidence are token features the transformer reads. A question that points at an earlier task ("the
previous task", "four tasks ago": ``question_anchor``) marks that task's tokens, its earliest frame held and
its newest close held; the text, picture and position pointers may weigh those marks in their attention. Each
pointer has a gate per question. The same model with ``use_memory=False`` is the blind bound (question and
options only).

The reader is swappable: anything with ``score(batch) -> (B, 4) logits`` trained on :class:`ReaderExample`
fits the benchmark (the language modules can replace it).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cortico.checkpoint import ProgressCheckpoint
from cortico.memory.qa import NUMBER_WORDS, TABLE_CENTRE
from cortico.memory.records import CLEAR, Evidence, gripper_closed

AGE_SCALE = 60.0  # seconds: ages are given to the reader in minutes


@dataclass
class ReaderExample:
    """Everything the reader sees for one question (numpy, ready to batch)."""

    question: np.ndarray  # (T,) text embedding
    options: np.ndarray  # (4, T)
    tokens: np.ndarray  # (N, D) now + memory + note tokens (frame embeddings)
    features: np.ndarray  # (N, F) per-token side information
    kinds: np.ndarray  # (N,) 0 now, 1 clear memory, 2 fuzzy memory, 3 note
    answer: int
    template: str = ""  # the question's template: not read by the reader (balancing and selecting readers)
    # the instruction each token was recorded under: a few distinct texts per example, embedded once each
    # (U, T), and per token which of them (N,); the reader projects each distinct text once, not per token
    instructions: np.ndarray | None = None
    instruction_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.instructions is None:  # no instruction known: one empty text for every token
            self.instructions = np.zeros((1, self.options.shape[1]), np.float32)
            self.instruction_index = np.zeros(len(self.kinds), np.int64)
        index = self.instruction_index
        if (
            index is None
            or len(index) != len(self.kinds)
            or (len(index) and not 0 <= index.min() <= index.max() < len(self.instructions))
        ):
            raise ValueError(
                f"instruction_index must give each of the {len(self.kinds)} tokens a row of its "
                f"{len(self.instructions)} instructions"
            )


# age, log-age, gripper open, success, gripper changes, duration, tasks ago (of the newest task a token
# covers), time in task, merged, tasks ago of the oldest task it covers, then the gripper's position over the
# table (x and y from the table's centre, in decimetres; for a note, where the gripper last closed in it)
# and whether the token has one; whether the token holds the newest gripper close the evidence shows; where
# the frame encoder saw the object (same units); whether the token is the earliest frame the evidence
# holds of its task; last, the question's anchor (see ``question_anchor``): whether the token covers the task
# the question points at, is the earliest frame held of it, holds the newest close held in it
FEATURES = 21
TASKS_AGO_FEATURE, OLDEST_TASKS_AGO_FEATURE, MAX_TASKS_AGO = 6, 9, 15
POSITION_FEATURES = slice(10, 13)
NEWEST_CLOSE_FEATURE = 13
OBJECT_FEATURES = slice(14, 17)
TASK_START_FEATURE = 17
ANCHOR_FEATURE, ANCHOR_START_FEATURE, ANCHOR_CLOSE_FEATURE = 18, 19, 20
CUE_SCALE = 5.0  # attention logits per unit of a pointer's cue weight
POINTER_SCALE = 10.0  # option logits per unit of a pointer's agreement (at gate 1)


def position_features(position) -> list[float]:  # noqa: ANN001 - a sequence of 3 floats, or None
    """``[x, y, known]``: a position relative to the table's centre (decimetres), or zeros."""
    if position is None:
        return [0.0, 0.0, 0.0]
    return [10.0 * (position[0] - TABLE_CENTRE[0]), 10.0 * (position[1] - TABLE_CENTRE[1]), 1.0]


_TASKS_AGO = re.compile(r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\s+tasks?\s+ago\b", re.IGNORECASE)
_PREVIOUS_TASK = re.compile(r"\b(previous|last)\s+task\b", re.IGNORECASE)


def question_anchor(text: str) -> int | None:
    """How many tasks back a question points ("the previous task" 1, "four tasks ago" 4), or None.

    The reader's input marks the tokens of that task (``ANCHOR_FEATURE`` and the two after it), so finding
    "the start of the task four tasks ago" is a lookup rather than number words the transformer must learn to
    match with its tokens' task counts (a run without it learned neither such template: BENCHMARKS.md).
    """
    match = _TASKS_AGO.search(text)
    if match:
        word = match.group(1).lower()
        return int(word) if word.isdigit() else NUMBER_WORDS.index(word)
    return 1 if _PREVIOUS_TASK.search(text) else None


def tasks_ago(features: torch.Tensor, feature: int = TASKS_AGO_FEATURE) -> torch.Tensor:
    """How many tasks before the current one each token is from (an integer, clipped to ``MAX_TASKS_AGO``)."""
    return (features[..., feature] * 10.0).round().clamp(0, MAX_TASKS_AGO).long()


def example_from_evidence(
    question_embedding: np.ndarray,
    option_embeddings: np.ndarray,
    now_tokens: np.ndarray,
    now_facts: dict,
    evidence: Evidence | None,
    instruction_embedding,  # noqa: ANN001 - callable: text -> (T,) array
    answer: int,
    template: str = "",
    anchor: int | None = None,
) -> ReaderExample:
    """Assemble the reader's tokens for a question asked now (``evidence`` None: the blind bound).

    ``anchor``: how many tasks back the question points (``question_anchor`` of its text), marked on the tokens.
    """
    tokens, features, kinds, texts = [], [], [], []
    current_task = now_facts.get("task_number", 0)
    anchored = None if anchor is None else current_task - anchor  # the task number the question points at
    # (time, gripper command, its token rows, task number) of every frame token
    frames: list[tuple[float, float, range, int | None]] = []
    closes: list[tuple[float, range, int | None]] = []  # (time, rows, task) of every gripper close the evidence shows
    starts: dict[int, tuple[float, range]] = {}  # task number -> (time, token rows) of its earliest frame token

    def add(
        vectors: np.ndarray,
        kind: int,
        age: float,
        facts: dict,
        duration: float = 0.0,
        changes: float = 0.0,
        position=None,  # noqa: ANN001
    ) -> range:
        numbers = facts.get("task_numbers") or [facts.get("task_number", current_task)]
        where = position_features(position if kind == 3 else facts.get("gripper_position"))
        first = len(tokens)
        for vector in vectors:
            tokens.append(vector)
            features.append(
                [
                    age / AGE_SCALE,
                    np.log1p(age),
                    float(facts.get("gripper_open", 0.5)),
                    float(facts.get("success", 0.0)),
                    changes / 4.0,
                    duration / AGE_SCALE,
                    (current_task - max(numbers)) / 10.0,  # TASKS_AGO_FEATURE
                    float(facts.get("task_time", 0.0)) / AGE_SCALE,
                    float(facts.get("merged", 1)) / 10.0,
                    (current_task - min(numbers)) / 10.0,  # OLDEST_TASKS_AGO_FEATURE
                    *where,  # POSITION_FEATURES
                    0.0,  # NEWEST_CLOSE_FEATURE, set below
                    *position_features(None if kind == 3 else facts.get("object_position")),  # OBJECT_FEATURES
                    0.0,  # TASK_START_FEATURE, set below
                    float(anchored is not None and min(numbers) <= anchored <= max(numbers)),  # ANCHOR_FEATURE
                    0.0,  # ANCHOR_START_FEATURE, set below
                    0.0,  # ANCHOR_CLOSE_FEATURE, set below
                ]
            )
            kinds.append(kind)
            texts.append(facts.get("instruction") or (facts.get("instructions") or [""])[-1])
        rows = range(first, len(tokens))
        if kind != 3 and "gripper_open" in facts:
            frames.append((-age, float(facts["gripper_open"]), rows, facts.get("task_number")))
        if kind != 3 and "task_number" in facts:
            number = int(facts["task_number"])
            if number not in starts or -age < starts[number][0]:
                starts[number] = (-age, rows)
        return rows

    add(now_tokens, 0, 0.0, now_facts)
    if evidence is not None:
        for item in evidence.items:
            add(item.vectors, 1 if item.fidelity == CLEAR else 2, evidence.time - item.time, item.facts)
        for note in evidence.notes:
            rows = add(
                note.embedding[None],
                3,
                evidence.time - note.end,
                note.facts,
                note.end - note.start,
                note.facts.get("gripper_changes", 0),
                note.facts.get("close_position"),
            )
            if "close_position" in note.facts:
                task = note.facts.get("close_task", max(note.facts.get("task_numbers") or [None]))
                closes.append((note.facts.get("close_time", note.end) - evidence.time, rows, task))
            for key in note.key_frames:
                add(key.vectors, 2, evidence.time - key.time, key.facts)
    # a close is also seen between two frames in memory, the earlier open and the later closed, unless a note
    # recorded a close between them (the same close, at its exact moment)
    frames.sort(key=lambda frame: frame[0])
    recorded = [close[0] for close in closes]
    closes += [
        (later[0], later[2], later[3])
        for earlier, later in zip(frames, frames[1:])
        if gripper_closed(earlier[1], later[1]) and not any(earlier[0] < t <= later[0] for t in recorded)
    ]
    flagged = []  # (feature, token rows)
    if closes:
        flagged.append((NEWEST_CLOSE_FEATURE, max(closes, key=lambda close: close[0])[1]))
    flagged += [(TASK_START_FEATURE, rows) for _, rows in starts.values()]
    if anchored in starts:
        flagged.append((ANCHOR_START_FEATURE, starts[anchored][1]))
    in_anchored_task = [close for close in closes if anchored is not None and close[2] == anchored]
    if in_anchored_task:
        flagged.append((ANCHOR_CLOSE_FEATURE, max(in_anchored_task, key=lambda close: close[0])[1]))
    for feature, rows in flagged:
        for row in rows:
            features[row][feature] = 1.0
    rows = {text: row for row, text in enumerate(dict.fromkeys(texts))}  # each distinct text, first seen first
    return ReaderExample(
        question=question_embedding.astype(np.float32),
        options=option_embeddings.astype(np.float32),
        tokens=np.stack(tokens).astype(np.float32),
        features=np.asarray(features, dtype=np.float32),
        kinds=np.asarray(kinds, dtype=np.int64),
        answer=answer,
        template=template,
        instructions=np.stack([instruction_embedding(t) for t in rows]).astype(np.float32),
        instruction_index=np.asarray([rows[t] for t in texts], dtype=np.int64),
    )


class MemoryReader(nn.Module):
    """See module doc. ``frame_dim``: width of frame tokens; ``text_dim``: of text embeddings.

    ``attention_dropout``: dropout on the attention weights (elsewhere it is 0.1). Drawing a mask over every
    (token, token) pair is most of a CPU training step on long examples: 0 trains 1.3-1.6x faster.
    """

    def __init__(
        self,
        frame_dim: int,
        text_dim: int,
        width: int = 96,
        layers: int = 2,
        use_memory: bool = True,
        attention_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.use_memory = use_memory
        self.frame_dim, self.text_dim = frame_dim, text_dim
        # a token's input is [frame embedding, instruction embedding, features] (the instruction's columns are
        # applied to each distinct instruction of a batch once: ``_embed_tokens``)
        self.token = nn.Linear(frame_dim + text_dim + FEATURES, width)
        self.kind = nn.Embedding(4, width)
        self.tasks_ago = nn.Embedding(MAX_TASKS_AGO + 1, width)  # categorical: "two tasks ago" is not a slope
        self.oldest_tasks_ago = nn.Embedding(MAX_TASKS_AGO + 1, width)
        self.question = nn.Linear(text_dim, width)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.1, batch_first=True, norm_first=True)
        layer.self_attn.dropout = attention_dropout  # copied into every layer below
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.option = nn.Linear(text_dim, width)
        self.score_head = nn.Sequential(nn.Linear(3 * width, width), nn.GELU(), nn.Linear(width, 1))
        self.text_projection = nn.Linear(text_dim, width)  # instruction texts and options, one space
        # pointers: which read token the question points at, and how alike each option is to what it holds
        # cue: the anchored task's tokens
        self.text_pointer = Pointer(width, self.text_projection, self.text_projection, cues=1)
        self.count_pointer = Pointer(width, nn.Linear(text_dim, width), self.oldest_tasks_ago)
        # a frame's picture and where the frame encoder saw the object in it; cue: the anchored task's start
        self.picture_pointer = Pointer(width, nn.Linear(text_dim, width), nn.Linear(frame_dim + 3, width), cues=1)
        # gripper position; cues: newest close, now, newest close in the anchored task. A second position
        # pointer over the perceived object (cues: task start, now) took the gripper questions' gradient
        # (last-close 1.00 -> 0.29 in the benchmark) and added nothing measurable to the object questions
        where = nn.Sequential(nn.Linear(3, width), nn.GELU(), nn.Linear(width, width))
        self.position_pointer = Pointer(width, nn.Linear(text_dim, width), where, cues=3)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, 4)`` option logits (in training, each pointer's own option logits go to ``pointer_logits``)."""
        self.pointer_logits: list[torch.Tensor] = []
        question = self.question(batch["question"])[:, None]  # (B, 1, W)
        if self.use_memory:
            tokens = self._embed_tokens(batch) + self.kind(batch["kinds"])
            tokens = tokens + self.tasks_ago(tasks_ago(batch["features"]))
            tokens = tokens + self.oldest_tasks_ago(tasks_ago(batch["features"], OLDEST_TASKS_AGO_FEATURE))
            sequence = torch.cat([question, tokens], dim=1)
            padding = torch.cat([torch.zeros_like(batch["mask"][:, :1]), ~batch["mask"]], dim=1)
        else:
            sequence, padding = question, None
        encoded = self.encoder(sequence, src_key_padding_mask=padding)
        pooled = encoded[:, 0]  # the question token reads the rest
        options = self.option(batch["options"])  # (B, 4, W)
        joint = torch.cat([pooled[:, None].expand_as(options), options, pooled[:, None] * options], dim=-1)
        scores = self.score_head(joint).squeeze(-1)
        if self.use_memory:
            read, mask, choices = encoded[:, 1:], batch["mask"], batch["options"]
            texts = (batch["instructions"], batch["instruction_index"])  # projected once per distinct text
            oldest = tasks_ago(batch["features"], OLDEST_TASKS_AGO_FEATURE)
            features, now = batch["features"], (batch["kinds"] == 0).float()
            pictures = torch.cat([batch["tokens"][..., : self.frame_dim], features[..., OBJECT_FEATURES]], dim=-1)
            positions = features[..., POSITION_FEATURES]
            cues = torch.stack([features[..., NEWEST_CLOSE_FEATURE], now, features[..., ANCHOR_CLOSE_FEATURE]], dim=-1)
            pointers = (
                (self.text_pointer, texts, features[..., ANCHOR_FEATURE : ANCHOR_FEATURE + 1]),
                (self.count_pointer, oldest),
                (self.picture_pointer, pictures, features[..., ANCHOR_START_FEATURE : ANCHOR_START_FEATURE + 1]),
                (self.position_pointer, positions, cues),
            )
            for pointer, contents, *cue in pointers:
                weight, agreement = pointer(pooled, read, mask, contents, choices, *cue)
                scores = scores + weight * agreement
                if self.training:
                    self.pointer_logits.append(POINTER_SCALE * agreement)
        return scores

    def _embed_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``self.token`` of each token's [frame, instruction, features], the instruction part once per text."""
        weight, frame, text = self.token.weight, self.frame_dim, self.frame_dim + self.text_dim
        own = torch.cat([batch["tokens"], batch["features"]], dim=-1)
        own = F.linear(own, torch.cat([weight[:, :frame], weight[:, text:]], dim=1), self.token.bias)
        return own + F.linear(batch["instructions"], weight[:, frame:text])[batch["instruction_index"]]


class Pointer(nn.Module):
    """Scores options by what the token the question attends to holds (its text, its oldest task, its picture).

    The question's pooled state attends over the read tokens; each option, projected by ``options``, is
    compared (cosine) with the attended tokens' contents, projected by ``contents``; a gate per question
    (softplus, starting nearly off) says how much the pointer counts. ``contents`` may be a table of distinct
    values and each token's row in it (``(table (K, C), index (B, N))``): projected once per row. With
    ``cues``, each question also weighs ``C`` token flags ``(B, N, C)`` directly in its attention (the
    position pointer: "holds the newest gripper close", "is the present frame", "holds the newest close of
    the anchored task"), so it need not learn to find them through the transformer.
    """

    def __init__(self, width: int, options: nn.Module, contents: nn.Module, cues: int = 0) -> None:
        super().__init__()
        self.query, self.key = nn.Linear(width, width), nn.Linear(width, width)
        self.options, self.contents = options, contents
        self.gate = nn.Linear(width, 1)
        nn.init.constant_(self.gate.bias, -3.0)  # random projections add noise until trained
        # cues: token flags the question may weigh directly in its attention (starting at zero)
        self.cue_weights = nn.Linear(width, cues) if cues else None
        if self.cue_weights is not None:
            nn.init.zeros_(self.cue_weights.weight)
            nn.init.zeros_(self.cue_weights.bias)

    def forward(
        self,
        pooled: torch.Tensor,
        read: torch.Tensor,
        mask: torch.Tensor,
        contents: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        options: torch.Tensor,
        cues: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight (B, 1), agreement (B, 4))`` from ``pooled (B, W)``, ``read (B, N, W)``, ``contents``, ``cues``.

        ``agreement`` (in [-1, 1]) is how alike each option is to what the attended tokens hold; the reader
        adds ``weight * agreement`` to its scores (the weight is the gate, up to ``POINTER_SCALE``).
        """
        logits = torch.einsum("bw,bnw->bn", self.query(pooled), self.key(read)) / read.shape[-1] ** 0.5
        if self.cue_weights is not None:
            logits = logits + CUE_SCALE * torch.einsum("bc,bnc->bn", self.cue_weights(pooled), cues)
        attention = logits.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # (B, N)
        if isinstance(contents, tuple):  # (table, index): each distinct row projected once
            table, index = contents
            targets = F.normalize(self.contents(table), dim=-1)[index]  # (B, N, W)
        else:
            targets = F.normalize(self.contents(contents), dim=-1)  # (B, N, W)
        similarity = torch.einsum("bow,bnw->bon", F.normalize(self.options(options), dim=-1), targets)
        return POINTER_SCALE * F.softplus(self.gate(pooled)), torch.einsum("bon,bn->bo", similarity, attention)


def collate(examples: list[ReaderExample]) -> dict[str, torch.Tensor]:
    """Pad a list of examples into a batch (their instructions in one table, indexed per token)."""
    length = max(len(e.kinds) for e in examples)
    batch = len(examples)
    width = examples[0].tokens.shape[1]
    tokens = np.zeros((batch, length, width), np.float32)
    features = np.zeros((batch, length, FEATURES), np.float32)
    kinds = np.zeros((batch, length), np.int64)
    index = np.zeros((batch, length), np.int64)  # padding points at row 0: masked out
    mask = np.zeros((batch, length), bool)
    offset = 0
    for i, e in enumerate(examples):
        n = len(e.kinds)
        tokens[i, :n], features[i, :n], kinds[i, :n], mask[i, :n] = e.tokens, e.features, e.kinds, True
        index[i, :n] = e.instruction_index + offset
        offset += len(e.instructions)
    return {
        "instructions": torch.from_numpy(np.concatenate([e.instructions for e in examples]).astype(np.float32)),
        "instruction_index": torch.from_numpy(index),
        "question": torch.from_numpy(np.stack([e.question for e in examples])),
        "options": torch.from_numpy(np.stack([e.options for e in examples])),
        "tokens": torch.from_numpy(tokens),
        "features": torch.from_numpy(features),
        "kinds": torch.from_numpy(kinds),
        "mask": torch.from_numpy(mask),
        "answer": torch.tensor([e.answer for e in examples]),
    }


def length_buckets(examples: list[ReaderExample], batch_size: int, batches_per_bucket: int = 8) -> list[list[int]]:
    """Example indices grouped by token count, so a batch pads to its own length, not the longest example's.

    Oracle examples (every frame) are ten times longer than budgeted ones; mixed in one batch they would set
    its length and make every step as slow as theirs.
    """
    order = np.argsort([len(e.kinds) for e in examples], kind="stable")
    size = batch_size * batches_per_bucket
    return [order[start : start + size].tolist() for start in range(0, len(order), size)]


def template_weights(examples: list[ReaderExample]) -> torch.Tensor:
    """Per example, one over its template's count: sampling by these draws every template equally often."""
    counts = Counter(e.template for e in examples)
    return torch.tensor([1.0 / counts[e.template] for e in examples], dtype=torch.float)


def train_reader(
    reader: MemoryReader,
    examples: list[ReaderExample],
    *,
    steps: int = 1500,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
    pointer_loss_weight: float = 0.0,
    balance_templates: bool = False,
    progress_folder: str | Path | None = None,
    checkpoint_every: int = 250,
) -> list[float]:
    """Train on examples (cross-entropy over the four options); returns the loss curve (with the pointers' terms).

    Each step draws a length bucket (in proportion to its size) and a batch within it. With
    ``pointer_loss_weight``, each pointer's own answer adds that times its cross-entropy (deep supervision:
    a pointer learns where to look even while its gate is nearly shut); off by default, since one benchmark
    run with it did not bring back the question it was meant to (docs/memory.md). With ``balance_templates``,
    a batch draws its examples within the bucket in inverse proportion to their template's share of the
    training set, so every template is trained about equally often (whether a reader learned the rarest, the
    last gripper close, varied with its seed). With ``progress_folder``, the training state is kept there every
    ``checkpoint_every`` steps and a call that finds it goes on from there to the same reader and loss curve
    (the caller removes it once the reader is kept: ``ProgressCheckpoint``).
    """
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    buckets = length_buckets(examples, batch_size)
    sizes = torch.tensor([len(b) for b in buckets], dtype=torch.float)
    weights = template_weights(examples) if balance_templates else None
    optimizer = torch.optim.AdamW(reader.parameters(), lr=1e-3, weight_decay=1e-2)
    kept = ProgressCheckpoint(progress_folder, model=reader, optimizer=optimizer, generator=generator,
                              every=checkpoint_every)  # fmt: skip
    first, saved = kept.start(steps)
    reader.train()
    losses = list(saved.get("losses", []))
    for step in tqdm(range(first, steps), desc="train reader", disable=not progress, initial=first, total=steps):
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        bucket = buckets[int(torch.multinomial(sizes, 1, generator=generator))]
        if weights is None:
            picks = torch.randint(len(bucket), (batch_size,), generator=generator).tolist()
        else:
            picks = torch.multinomial(weights[bucket], batch_size, replacement=True, generator=generator).tolist()
        batch = collate([examples[bucket[i]] for i in picks])
        loss = F.cross_entropy(reader(batch), batch["answer"])
        if pointer_loss_weight:
            for logits in getattr(reader, "pointer_logits", []):
                loss = loss + pointer_loss_weight * F.cross_entropy(logits, batch["answer"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reader.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        kept.after(step + 1, {"losses": losses})
    return losses


@torch.no_grad()
def option_probabilities(
    readers: MemoryReader | Sequence[MemoryReader], examples: list[ReaderExample], batch_size: int = 64
) -> np.ndarray:
    """``(N, 4)`` option probabilities, averaged over ``readers`` when several are given (an ensemble).

    Readers trained from different seeds learn the rarer question templates in some runs and not in others;
    averaging their probabilities lets a reader that knows an answer outvote those that are unsure.
    Examples go through in batches of similar lengths (little padding); rows come back in their order.
    """
    readers = [readers] if isinstance(readers, nn.Module) else list(readers)
    if not readers:
        raise ValueError("option_probabilities needs at least one reader")
    for reader in readers:
        reader.eval()
    probabilities = np.zeros((len(examples), 4), dtype=np.float32)
    for rows in length_buckets(examples, batch_size, batches_per_bucket=1):
        batch = collate([examples[i] for i in rows])
        probabilities[rows] = torch.stack([reader(batch).softmax(dim=1) for reader in readers]).mean(0).numpy()
    return probabilities


def predict(
    readers: MemoryReader | Sequence[MemoryReader], examples: list[ReaderExample], batch_size: int = 64
) -> np.ndarray:
    """Chosen option per example (by the readers' mean probabilities when several are given)."""
    return option_probabilities(readers, examples, batch_size).argmax(axis=1)


def template_accuracy(reader: MemoryReader, examples: list[ReaderExample]) -> dict[str, float]:
    """One reader's accuracy on ``examples``, per question template."""
    chosen = predict(reader, examples)
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for example, choice in zip(examples, chosen):
        outcomes[example.template].append(bool(choice == example.answer))
    return {template: float(np.mean(values)) for template, values in sorted(outcomes.items())}


def select_readers(accuracies: Sequence[Mapping[str, float]], keep: int) -> list[int]:
    """Indices (in order) of the ``keep`` readers with the best mean of their per-template accuracies.

    Every template counts alike, so a reader that never learned a rare template (which happens to some seeds
    and not others) ranks below one that learned them all; ties keep the earlier reader.
    """
    if not 1 <= keep <= len(accuracies):
        raise ValueError(f"keep must be between 1 and the {len(accuracies)} readers, got {keep}")
    means = [float(np.mean(list(a.values()))) if a else 0.0 for a in accuracies]
    return sorted(sorted(range(len(means)), key=lambda i: (-means[i], i))[:keep])
