"""The memory reader: padding, length buckets, and copying an answer from the memory it points at."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cortico.checkpoint import CheckpointError
from cortico.memory import reader as reader_module
from cortico.memory.qa import TABLE_CENTRE
from cortico.memory.reader import (
    ANCHOR_CLOSE_FEATURE,
    ANCHOR_FEATURE,
    ANCHOR_START_FEATURE,
    FEATURES,
    NEWEST_CLOSE_FEATURE,
    OBJECT_FEATURES,
    OLDEST_TASKS_AGO_FEATURE,
    POSITION_FEATURES,
    TASK_START_FEATURE,
    TASKS_AGO_FEATURE,
    MemoryReader,
    ReaderExample,
    collate,
    example_from_evidence,
    length_buckets,
    option_probabilities,
    predict,
    question_anchor,
    template_weights,
    train_reader,
)
from cortico.memory.records import FUZZY, Evidence, MemoryItem, MemoryNote

FRAME, TEXT = 8, 16


def _example(question, options, frames, texts, features, kinds, answer) -> ReaderExample:  # noqa: ANN001
    """An example whose tokens show ``frames (N, FRAME)`` recorded under the instructions ``texts (N, TEXT)``."""
    table, index = np.unique(texts, axis=0, return_inverse=True)
    return ReaderExample(question, options, frames, features, kinds, answer,
                         instructions=table, instruction_index=index.reshape(-1))  # fmt: skip


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
        features[:, TASKS_AGO_FEATURE] = features[:, OLDEST_TASKS_AGO_FEATURE] = np.arange(6) / 10.0  # tasks ago
        examples.append(_example(
            questions[back - 1], objects[options], rng.normal(size=(6, FRAME)).astype(np.float32), objects[held],
            features, np.ones(6, np.int64), int(np.flatnonzero(options == answer_object)[0]),
        ))  # fmt: skip
    return examples


def test_the_reader_copies_the_answer_from_the_memory_the_question_points_at() -> None:
    """Alone, and in an ensemble with an untrained reader (mean probabilities)."""
    torch.manual_seed(0)
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1)
    losses = train_reader(reader, _lookup_examples(400, 1, objects), steps=300, batch_size=32)
    test = _lookup_examples(200, 2, objects)
    accuracy = np.mean(predict(reader, test) == np.array([e.answer for e in test]))
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    assert accuracy > 0.8, accuracy  # chance is 0.25; a reader that ignores which memory is asked gets ~0.5

    # an ensemble answers with its readers' mean probabilities: the trained reader outvotes an untrained one
    untrained = MemoryReader(FRAME, TEXT, width=32, layers=1)
    answers = np.array([e.answer for e in test])
    both = option_probabilities([reader, untrained], test)
    alone = [option_probabilities(r, test) for r in (reader, untrained)]
    np.testing.assert_allclose(both, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both.sum(axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(predict(reader, test), alone[0].argmax(axis=1))
    assert np.mean(predict(untrained, test) == answers) < 0.5
    assert np.mean(predict([reader, untrained], test) == answers) > 0.8
    assert predict([reader], []).shape == (0,)


def test_probabilities_of_examples_of_mixed_lengths_come_back_in_their_order() -> None:
    """Examples are read in batches sorted by length; each row is still the example's own answer."""
    torch.manual_seed(0)
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1).eval()
    examples = []
    for n, e in zip([6, 2, 5, 1, 3, 6, 2, 4, 1, 5], _lookup_examples(10, 3, objects)):  # the first n memories
        texts = e.instructions[e.instruction_index[:n]]
        examples.append(_example(e.question, e.options, e.tokens[:n], texts, e.features[:n], e.kinds[:n], e.answer))
    together = option_probabilities(reader, examples, batch_size=4)
    alone = np.concatenate([option_probabilities(reader, [e]) for e in examples])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def _count_examples(count: int, seed: int, numbers: np.ndarray) -> list[ReaderExample]:
    """Memories of random earlier tasks (one may cover several, like a merged note); the answer is how many
    tasks ago the oldest one began, among four consecutive numbers (so its rank among them says nothing)."""
    rng = np.random.default_rng(seed)
    question = np.eye(TEXT, dtype=np.float32)[3]
    examples = []
    for _ in range(count):
        size = int(rng.integers(2, 7))
        oldest = rng.integers(0, 9, size=size)
        newest = np.minimum(oldest, rng.integers(0, 3, size=size))  # tasks ago of the newest task covered
        answer = int(oldest.max())
        low = answer - int(rng.integers(0, 4))
        options = np.arange(low, low + 4) % 12
        features = np.zeros((size, FEATURES), np.float32)
        features[:, TASKS_AGO_FEATURE], features[:, OLDEST_TASKS_AGO_FEATURE] = newest / 10.0, oldest / 10.0
        tokens = rng.normal(size=(size, FRAME + TEXT)).astype(np.float32)
        examples.append(_example(question, numbers[options], tokens[:, :FRAME], tokens[:, FRAME:], features,
                                 np.full(size, 3), int(np.flatnonzero(options == answer % 12)[0])))  # fmt: skip
    return examples


def test_the_reader_reads_how_many_tasks_ago_the_oldest_memory_began() -> None:
    torch.manual_seed(0)
    numbers = np.random.default_rng(3).normal(size=(12, TEXT)).astype(np.float32)  # the option texts "0".."11"
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1)
    train_reader(reader, _count_examples(600, 1, numbers), steps=400, batch_size=32)
    test = _count_examples(200, 2, numbers)
    accuracy = np.mean(predict(reader, test) == np.array([e.answer for e in test]))
    assert accuracy > 0.8, accuracy  # chance is 0.25


def _picture_examples(
    count: int, seed: int, regions: np.ndarray, looks: np.ndarray, anchored: bool = False
) -> list[ReaderExample]:
    """Six memories whose pictures show one of four regions; the question asks what the previous task's showed.

    ``anchored``: each memory is a task start and the question means one 1-5 tasks back, the same words for
    each; only the anchor marks (``ANCHOR_FEATURE``, ``ANCHOR_START_FEATURE``) tell which.
    """
    rng = np.random.default_rng(seed)
    question = np.eye(TEXT, dtype=np.float32)[7 if anchored else 5]
    examples = []
    for _ in range(count):
        shown = rng.integers(0, 4, size=6)  # the region in the picture of the memory 0..5 tasks ago
        back = int(rng.integers(1, 6)) if anchored else 1
        features = np.zeros((6, FEATURES), np.float32)
        features[:, TASKS_AGO_FEATURE] = features[:, OLDEST_TASKS_AGO_FEATURE] = np.arange(6) / 10.0
        if anchored:
            features[:, TASK_START_FEATURE] = 1.0
            features[back, ANCHOR_FEATURE] = features[back, ANCHOR_START_FEATURE] = 1.0
        pictures = looks[shown] + 0.3 * rng.normal(size=(6, FRAME)).astype(np.float32)
        texts = rng.normal(size=(6, TEXT)).astype(np.float32)
        examples.append(_example(question, regions, pictures, texts, features, np.full(6, 2), int(shown[back])))
    return examples


def test_the_reader_answers_from_the_picture_of_the_memory_the_question_points_at() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    regions, looks = rng.normal(size=(4, TEXT)).astype(np.float32), rng.normal(size=(4, FRAME)).astype(np.float32)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1)
    train_reader(reader, _picture_examples(600, 1, regions, looks), steps=400, batch_size=32)
    test = _picture_examples(200, 2, regions, looks)
    accuracy = np.mean(predict(reader, test) == np.array([e.answer for e in test]))
    assert accuracy > 0.8, accuracy  # chance is 0.25; the other memories' pictures are random regions


def _position_examples(count: int, seed: int, regions: np.ndarray) -> list[ReaderExample]:
    """Six memories, each with a gripper position; the question asks over which quarter the previous one's was."""
    rng = np.random.default_rng(seed)
    question = np.eye(TEXT, dtype=np.float32)[6]
    examples = []
    for _ in range(count):
        where = rng.uniform(-3.0, 3.0, size=(6, 2))  # decimetres from the table's centre
        features = np.zeros((6, FEATURES), np.float32)
        features[:, TASKS_AGO_FEATURE] = features[:, OLDEST_TASKS_AGO_FEATURE] = np.arange(6) / 10.0
        features[:, POSITION_FEATURES] = np.concatenate([where, np.ones((6, 1))], axis=1)
        quarter = int(where[1, 0] > 0) + 2 * int(where[1, 1] > 0)  # near left, near right, far left, far right
        tokens = rng.normal(size=(6, FRAME + TEXT)).astype(np.float32)
        examples.append(_example(question, regions, tokens[:, :FRAME], tokens[:, FRAME:], features, np.full(6, 3),
                                 quarter))  # fmt: skip
    return examples


def test_the_reader_answers_from_the_gripper_position_the_memory_the_question_points_at_holds() -> None:
    torch.manual_seed(0)
    regions = np.random.default_rng(5).normal(size=(4, TEXT)).astype(np.float32)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1)
    train_reader(reader, _position_examples(600, 1, regions), steps=400, batch_size=32)
    test = _position_examples(200, 2, regions)
    accuracy = np.mean(predict(reader, test) == np.array([e.answer for e in test]))
    assert accuracy > 0.8, accuracy  # chance is 0.25; the other memories' positions are random quarters


def test_each_pointer_answers_on_its_own_in_training_and_its_loss_is_added() -> None:
    """Deep supervision: in training every pointer's own option logits are kept and trained on; not in eval."""
    regions = np.random.default_rng(5).normal(size=(4, TEXT)).astype(np.float32)
    examples = _position_examples(64, 1, regions)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1).train()
    reader(collate(examples[:8]))
    assert len(reader.pointer_logits) == 4 and all(p.shape == (8, 4) for p in reader.pointer_logits)
    reader.eval()
    reader(collate(examples[:8]))
    assert reader.pointer_logits == []
    curves = []
    for weight in (0.0, 0.2):
        torch.manual_seed(0)
        curves.append(train_reader(MemoryReader(FRAME, TEXT, width=32, layers=1), examples, steps=1, batch_size=8,
                                   pointer_loss_weight=weight))  # fmt: skip
    assert curves[1][0] > curves[0][0] + 0.2 * 4 * 0.5  # four pointers, each near chance (ln 4 = 1.39)


def test_the_earliest_frame_of_each_task_and_the_perceived_object_position_are_features() -> None:
    def item(time: float, task: int, object_x: float) -> MemoryItem:
        facts = {"task_number": task, "object_position": (object_x, 0.6, 0.0)}
        return MemoryItem(int(time), time, FUZZY, np.ones((1, FRAME), np.float32), facts)

    items = [item(3.0, 1, 0.1), item(1.0, 0, 0.2), item(2.0, 0, 0.3), item(5.0, 1, 0.4)]
    note = MemoryNote(0.0, 2.0, np.ones(FRAME, np.float32), {"task_numbers": [0]}, (item(0.5, 0, -0.1),))
    example = example_from_evidence(np.zeros(TEXT, np.float32), np.zeros((4, TEXT), np.float32),
                                    np.ones((1, FRAME), np.float32), {"task_number": 2}, Evidence(6.0, items, [note]),
                                    lambda text: np.zeros(TEXT, np.float32), 0)  # fmt: skip
    # rows: now (task 2), the four items, the note, its key frame (t=0.5: task 0's earliest, before t=1)
    assert np.flatnonzero(example.features[:, TASK_START_FEATURE]).tolist() == [0, 1, 6]
    known = example.features[:, OBJECT_FEATURES]
    assert known[:, 2].tolist() == [0, 1, 1, 1, 1, 0, 1]  # nothing perceived for "now" (no fact) or for a note
    assert np.allclose(known[1, :2], [10.0 * (0.1 - TABLE_CENTRE[0]), 10.0 * (0.6 - TABLE_CENTRE[1])])


def test_each_distinct_instruction_is_embedded_once_and_every_token_points_at_its_own() -> None:
    said = ["open the drawer", "press the button", "open the drawer"]
    items = [MemoryItem(i, float(i), FUZZY, np.ones((1, FRAME), np.float32), {"instruction": text})
             for i, text in enumerate(said)]  # fmt: skip
    embedded = []

    def embed(text: str) -> np.ndarray:
        embedded.append(text)
        return np.full(TEXT, len(text), np.float32)

    example = example_from_evidence(np.zeros(TEXT, np.float32), np.zeros((4, TEXT), np.float32),
                                    np.ones((1, FRAME), np.float32), {"instruction": "reach"}, Evidence(5.0, items, []),
                                    embed, 0)  # fmt: skip
    assert embedded == ["reach", "open the drawer", "press the button"]  # "now" first, then the memories
    assert example.instructions.shape == (3, TEXT) and example.tokens.shape == (4, FRAME)
    read = example.instructions[example.instruction_index][:, 0]
    assert read.tolist() == [len(text) for text in ["reach", *said]]


def test_the_newest_gripper_close_in_the_evidence_is_marked() -> None:
    def item(time: float, gripper_open: float) -> MemoryItem:
        return MemoryItem(int(time), time, FUZZY, np.ones((1, FRAME), np.float32), {"gripper_open": gripper_open})

    def note(end: float, close_time: float | None) -> MemoryNote:
        facts = {} if close_time is None else {"close_position": (0.1, 0.7, 0.0), "close_time": close_time}
        return MemoryNote(end - 1.0, end, np.ones(FRAME, np.float32), facts)

    def marked(items: list[MemoryItem], notes: list[MemoryNote]) -> list[int]:
        evidence = Evidence(10.0, items, notes)
        example = example_from_evidence(np.zeros(TEXT, np.float32), np.zeros((4, TEXT), np.float32),
                                        np.ones((1, FRAME), np.float32), {"gripper_open": 1.0}, evidence,
                                        lambda text: np.zeros(TEXT, np.float32), 0)  # fmt: skip
        return np.flatnonzero(example.features[:, NEWEST_CLOSE_FEATURE]).tolist()

    frames = [item(1.0, 1.0), item(2.0, 0.0), item(3.0, 1.0), item(4.0, 0.0), item(5.0, 0.0)]
    assert marked(frames, []) == [4]  # row 0 is "now"; the close seen between t=3 (open) and t=4 (closed)
    assert marked(frames, [note(6.0, 4.5), note(8.0, None)]) == [6]  # a note's close at t=4.5 is newer
    assert marked(frames[:1], [note(8.0, None)]) == []  # no close anywhere
    assert marked(frames, [note(6.0, 3.5)]) == [6]  # the close between t=3 and t=4 is the note's, at its moment


@pytest.mark.parametrize(
    ("text", "anchor"),
    [
        ("At the start of the previous task, over which part of the table was the object you handled?", 1),
        ("Which object did you work with in the previous task?", 1),
        ("Which object did you work with two tasks ago?", 2),
        ("At the start of the task four tasks ago, over which part of the table was the object you handled?", 4),
        ("Over which part of the table was the gripper when it last closed during the task six tasks ago?", 6),
        ("What did you pick up 12 tasks ago?", 12),
        ("Over which part of the table was the gripper when it last closed?", None),
        ("How many tasks had you finished before the current one?", None),
        ("Which object are you working with now?", None),
    ],
)
def test_a_question_anchor_is_how_many_tasks_back_its_words_point(text: str, anchor: int | None) -> None:
    assert question_anchor(text) == anchor


def test_the_anchored_task_its_earliest_frame_and_its_newest_close_are_marked() -> None:
    def item(time: float, task: int, gripper_open: float) -> MemoryItem:
        facts = {"task_number": task, "gripper_open": gripper_open}
        return MemoryItem(int(time), time, FUZZY, np.ones((1, FRAME), np.float32), facts)

    # task 1: open at t=2, closed at t=3, open at t=4, closed at t=5 (two closes); task 2 from t=6; now task 4
    items = [item(1.0, 0, 1.0), item(2.0, 1, 1.0), item(3.0, 1, 0.0), item(4.0, 1, 1.0), item(5.0, 1, 0.0),
             item(6.0, 2, 1.0), item(7.0, 3, 1.0)]  # fmt: skip
    note = MemoryNote(
        0.0,
        1.5,
        np.ones(FRAME, np.float32),
        {"task_numbers": [0], "close_position": (0.1, 0.7, 0.0), "close_time": 0.5, "close_task": 0},
    )

    def marked(anchor: int | None) -> list[list[int]]:
        evidence = Evidence(8.0, items, [note])
        example = example_from_evidence(np.zeros(TEXT, np.float32), np.zeros((4, TEXT), np.float32),
                                        np.ones((1, FRAME), np.float32), {"task_number": 4}, evidence,
                                        lambda text: np.zeros(TEXT, np.float32), 0, anchor=anchor)  # fmt: skip
        flags = (ANCHOR_FEATURE, ANCHOR_START_FEATURE, ANCHOR_CLOSE_FEATURE)
        return [np.flatnonzero(example.features[:, flag]).tolist() for flag in flags]

    # rows: now, the seven items (1-7), the note (8)
    assert marked(3) == [[2, 3, 4, 5], [2], [5]]  # task 1: its first frame held, its newer close (t=5)
    assert marked(4) == [[1, 8], [1], [8]]  # task 0: the item and the note; the close is the note's
    assert marked(2) == [[6], [6], []]  # task 2 shows no close
    assert marked(None) == [[], [], []]
    assert marked(9) == [[], [], []]  # further back than the stream


def test_the_reader_answers_from_the_start_of_the_task_the_question_is_anchored_to() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    regions, looks = rng.normal(size=(4, TEXT)).astype(np.float32), rng.normal(size=(4, FRAME)).astype(np.float32)
    reader = MemoryReader(FRAME, TEXT, width=32, layers=1)
    train_reader(reader, _picture_examples(600, 1, regions, looks, anchored=True), steps=400, batch_size=32)
    test = _picture_examples(200, 2, regions, looks, anchored=True)
    accuracy = np.mean(predict(reader, test) == np.array([e.answer for e in test]))
    assert accuracy > 0.8, accuracy  # chance 0.25: the question's words are the same whichever task it means


def test_batches_pad_to_their_longest_example_and_buckets_group_by_length() -> None:
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    (short,) = _lookup_examples(1, 0, objects)
    flipped = len(short.instructions) - 1 - short.instruction_index  # the same texts, the table reversed
    long = ReaderExample(short.question, short.options, np.tile(short.tokens, (5, 1)), np.tile(short.features, (5, 1)),
                         np.tile(short.kinds, 5), short.answer, instructions=short.instructions[::-1].copy(),
                         instruction_index=np.tile(flipped, 5))  # fmt: skip
    batch = collate([short, long])
    assert batch["tokens"].shape == (2, 30, FRAME)
    assert batch["mask"].sum(dim=1).tolist() == [6, 30]
    # one table of both examples' instructions: each token still points at its own text
    texts = batch["instructions"][batch["instruction_index"]]
    assert torch.equal(texts[0, :6], torch.from_numpy(short.instructions[short.instruction_index]))
    assert torch.equal(texts[1, :30], torch.from_numpy(np.tile(short.instructions[short.instruction_index], (5, 1))))
    # the instruction's part of each token's input, applied once per distinct text, is the per-token input's
    reader = MemoryReader(FRAME, TEXT, width=16, layers=1)
    inputs = torch.cat([batch["tokens"], texts, batch["features"]], dim=-1)
    torch.testing.assert_close(reader._embed_tokens(batch), reader.token(inputs))
    examples = [long if i % 3 == 0 else short for i in range(60)]
    buckets = length_buckets(examples, batch_size=4, batches_per_bucket=2)
    assert sorted(i for b in buckets for i in b) == list(range(60))
    lengths = [{len(examples[i].kinds) for i in b} for b in buckets]
    assert sum(len(group) > 1 for group in lengths) <= 1  # only the bucket at the boundary mixes lengths


def test_balanced_training_draws_every_template_about_equally_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """A template with 5% of the examples fills about half of the batches when the templates are balanced."""
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    examples = _lookup_examples(200, 3, objects)
    for index, example in enumerate(examples):
        example.template = "rare" if index % 20 == 0 else "common"
    weights = template_weights(examples)
    assert torch.isclose(weights[::20].sum(), torch.tensor(1.0)) and torch.isclose(weights.sum(), torch.tensor(2.0))
    drawn: dict[bool, list[str]] = {}
    for balanced in (False, True):
        seen = drawn[balanced] = []

        def recording_collate(batch: list[ReaderExample], seen: list[str] = seen) -> dict[str, torch.Tensor]:
            seen.extend(e.template for e in batch)
            return collate(batch)

        monkeypatch.setattr(reader_module, "collate", recording_collate)
        train_reader(MemoryReader(FRAME, TEXT, width=16, layers=1), examples, steps=20, batch_size=32,
                     balance_templates=balanced)  # fmt: skip
    assert np.mean([t == "rare" for t in drawn[False]]) < 0.12
    assert 0.38 < np.mean([t == "rare" for t in drawn[True]]) < 0.62


def test_attention_dropout_is_the_readers_own_and_off_in_evaluation() -> None:
    """Each layer's attention drops what the reader was built with; a trained reader answers the same either way."""
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    batch = collate(_lookup_examples(8, 0, objects))
    for rate in (0.0, 0.3):
        reader = MemoryReader(FRAME, TEXT, width=16, layers=2, attention_dropout=rate)
        assert [layer.self_attn.dropout for layer in reader.encoder.layers] == [rate, rate]
        assert [layer.dropout.p for layer in reader.encoder.layers] == [0.1, 0.1]  # elsewhere unchanged
    torch.manual_seed(0)
    reader = MemoryReader(FRAME, TEXT, width=16, layers=2, attention_dropout=0.5).eval()
    with torch.no_grad():
        torch.testing.assert_close(reader(batch), reader(batch))  # deterministic: no dropout in evaluation


def test_a_reader_killed_mid_training_goes_on_from_its_kept_progress_to_the_same_reader(tmp_path) -> None:
    """Progress kept every 4 steps: a run that died after step 9 resumes at step 8, to the same weights and losses."""
    objects = np.random.default_rng(0).normal(size=(12, TEXT)).astype(np.float32)
    examples = _lookup_examples(48, 1, objects)
    settings = {"steps": 10, "batch_size": 8, "seed": 3, "checkpoint_every": 4}

    def reader(initial_weights: int = 0) -> MemoryReader:
        torch.manual_seed(initial_weights)
        return MemoryReader(FRAME, TEXT, width=16, layers=1)  # dropout on: torch's random state matters

    uninterrupted = reader()
    losses = train_reader(uninterrupted, examples, **settings)
    after = torch.get_rng_state()  # the next stage's reader is initialised from it
    died = reader()  # the run that was killed: what it kept is the state after step 8 (the last multiple of 4)
    train_reader(died, examples, progress_folder=tmp_path / "progress", **settings)
    assert json.loads((tmp_path / "progress" / "trainer_state.json").read_text())["step"] == 8
    # the restarted process starts from other weights, and another seed: had it trained from the start it would
    # differ; what was kept decides
    resumed = reader(initial_weights=99)
    again = train_reader(resumed, examples, progress_folder=tmp_path / "progress", **{**settings, "seed": 4})
    assert again == losses
    assert torch.equal(torch.get_rng_state(), after)
    for mine, theirs in zip(resumed.state_dict().values(), uninterrupted.state_dict().values()):
        assert torch.equal(mine, theirs)
    with pytest.raises(CheckpointError, match="step 8, which a loop of 6 steps never leaves behind"):
        train_reader(reader(), examples, progress_folder=tmp_path / "progress", **{**settings, "steps": 6})
