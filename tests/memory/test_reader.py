"""The memory reader: padding, length buckets, and copying an answer from the memory it points at."""

from __future__ import annotations

import numpy as np
import torch

from cortico.memory.reader import FEATURES, MemoryReader, ReaderExample, collate, length_buckets, predict, train_reader

FRAME, TEXT = 8, 16


def _lookup_examples(count: int, seed: int, objects: np.ndarray) -> list[ReaderExample]:
    """Six memories with random object texts; the question asks for the object of the one ``back`` tasks ago."""
    rng = np.random.default_rng(seed)
    questions = np.eye(TEXT, dtype=np.float32)[:2]  # "previous task" / "two tasks ago"
    examples = []
    for _ in range(count):
        back = int(rng.integers(1, 3))
        held = rng.choice(len(objects), size=6, replace=False)  # object of the memory 0..5 tasks ago
        answer_object = held[back]
        distractors = rng.choice([o for o in range(len(objects)) if o != answer_object], size=3, replace=False)
        options = np.concatenate([[answer_object], distractors])
        rng.shuffle(options)
        features = np.zeros((6, FEATURES), np.float32)
        features[:, 6] = np.arange(6) / 10.0  # tasks ago
        tokens = np.concatenate([rng.normal(size=(6, FRAME)).astype(np.float32), objects[held]], axis=1)
        examples.append(ReaderExample(
            questions[back - 1], objects[options], tokens, features, np.ones(6, np.int64),
            int(np.flatnonzero(options == answer_object)[0]),
        ))  # fmt: skip
    return examples


def test_the_reader_copies_the_answer_from_the_memory_the_question_points_at() -> None:
    torch.manual_seed(0)
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1)
    losses = train_reader(reader, _lookup_examples(400, 1, objects), steps=300, batch_size=32)
    test = _lookup_examples(200, 2, objects)
    accuracy = np.mean(predict(reader, test) == np.array([e.answer for e in test]))
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    assert accuracy > 0.8, accuracy  # chance is 0.25; a reader that ignores which memory is asked gets ~0.5


def test_batches_pad_to_their_longest_example_and_buckets_group_by_length() -> None:
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    (short,) = _lookup_examples(1, 0, objects)
    long = ReaderExample(short.question, short.options, np.tile(short.tokens, (5, 1)),
                         np.tile(short.features, (5, 1)), np.tile(short.kinds, 5), short.answer)  # fmt: skip
    batch = collate([short, long])
    assert batch["tokens"].shape == (2, 30, FRAME + TEXT)
    assert batch["mask"].sum(dim=1).tolist() == [6, 30]
    examples = [long if i % 3 == 0 else short for i in range(60)]
    buckets = length_buckets(examples, batch_size=4, batches_per_bucket=2)
    assert sorted(i for b in buckets for i in b) == list(range(60))
    lengths = [{len(examples[i].kinds) for i in b} for b in buckets]
    assert sum(len(group) > 1 for group in lengths) <= 1  # only the bucket at the boundary mixes lengths
