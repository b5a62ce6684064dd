"""The streaming embodied QA benchmark: memory policies at equal budgets, one reader, held-out streams.

Training streams train the frame encoder and the reader (on evidence from every policy and budget, so one
reader serves them all; with ``readers`` > 1, an ensemble of readers from successive seeds, because one
reader's training decides whether it learns the rarer templates at all; with ``reader_candidates``, more
readers are trained and those that learned the most templates kept, judged on their own training questions
or, with ``selection_streams``, on the questions of training streams kept out of the readers' training);
held-out streams (other episodes)
are evaluated. Beside every policy stand the blind bound (question and options only: if it is far above
chance, the generator leaks answers) and the oracle bound (every frame of the past, one token each: the
ceiling when the budget does not bind).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cortico.atomic import atomic_directory, write_json_atomic
from cortico.checkpoint import load_checkpoint, save_checkpoint
from cortico.envs.dataset.index import INDEX_NAME, DatasetIndex, file_sha256
from cortico.memory.factory import make_memory
from cortico.memory.frame_encoder import ProbeFrameEncoder, perceive, train_probe_encoder
from cortico.memory.qa import Question, balance_across_streams, gripper_closes, region, stream_questions
from cortico.memory.reader import (
    MemoryReader,
    ReaderExample,
    example_from_evidence,
    option_probabilities,
    predict,
    question_anchor,
    select_readers,
    template_accuracy,
    train_reader,
)
from cortico.memory.records import FUZZY, Evidence, FrameRecord, MemoryInputError, MemoryItem
from cortico.memory.scenes import reset_scenes
from cortico.memory.streams import Stream, build_stream, plan_benchmark_streams, plan_streams
from cortico.settings import as_saved, settings_differences


@dataclass(frozen=True)
class BenchConfig:
    """Benchmark settings."""

    train_streams: int = 24  # chains of the training episodes (reused across streams, never in test streams)
    test_streams: int = 4
    episodes_per_stream: int = 10
    questions_per_stream: int = 60
    budgets: tuple[int, ...] = (5, 10, 20, 40)  # frames; tokens = frames * clear_tokens
    policies: tuple[str, ...] = ("cortico", "curvature", "uniform", "fifo", "merge")
    clear_tokens: int = 4
    frame_stride: int = 2
    encoder_steps: int = 3000  # with the scenes: held-out object xy error 3.5 cm, 3.4 at task starts (BENCHMARKS.md)
    encoder_scenes_per_task: int = 200  # freshly placed scenes per task beside the demo frames (memory/scenes.py)
    reader_steps: int = 1500
    readers: int = 1  # readers trained from seeds seed, seed + 1, ...; they answer together (mean probabilities)
    reader_candidates: int = 0  # readers trained in all (0: readers); the best `readers` answer (select_readers)
    selection_streams: int = 0  # the last training streams whose questions judge the candidates (0: training questions)
    pointer_loss_weight: float = 0.0  # deep supervision of the reader's pointers (train_reader)
    balance_templates: bool = False  # every template equally often in the reader's training (tried: BENCHMARKS.md)
    # dropout on the reader's attention weights; 0 trains readers 1.3-1.6x faster on a CPU (BENCHMARKS.md)
    reader_attention_dropout: float = 0.1
    older_tasks: bool = True  # also questions two to six tasks back (qa.py; BENCHMARKS.md)
    sources_per_question: int = 6  # memories (policy x budget) a training question is read from, besides the oracle
    seed: int = 0

    def __post_init__(self) -> None:
        if self.selection_streams and not self.reader_candidates > self.readers:
            raise ValueError(
                f"selection_streams ({self.selection_streams}) judge reader candidates: it needs reader_candidates "
                f"above readers ({self.reader_candidates} and {self.readers})"
            )
        if not 0 <= self.selection_streams < self.train_streams:
            raise ValueError(
                f"selection_streams must be between 0 and train_streams - 1 ({self.train_streams - 1}), "
                f"got {self.selection_streams}"
            )


class TextCache:
    """MiniLM embeddings of question, option and instruction texts, each computed once."""

    def __init__(self) -> None:
        from cortico.perception.text_encoder import TextEncoder

        self.encoder = TextEncoder()
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, text: str) -> np.ndarray:
        """Embedding of ``text`` (zeros for an empty text)."""
        if not text:
            return np.zeros(self.encoder.dim, np.float32)
        if text not in self._cache:
            self._cache[text] = self.encoder.embed(text)[0].numpy().astype(np.float32)
        return self._cache[text]


def encode_stream(encoder: ProbeFrameEncoder, stream: Stream) -> list[FrameRecord]:
    """Frame records of a stream (embeddings and what the encoder perceives, facts the agent knows)."""
    embeddings, tokens, seen = perceive(encoder, stream.images)
    return [
        FrameRecord(i, float(stream.times[i]), embeddings[i], tokens[i], {**stream.facts(i), **seen[i]})
        for i in range(len(stream))
    ]


def stream_states(stream: Stream) -> tuple[np.ndarray, np.ndarray]:
    """Regression targets and task labels for the probe encoder."""
    from cortico.envs.task_catalog import TASKS

    names = list(TASKS)
    states = np.concatenate([stream.gripper, stream.gripper_open[:, None], stream.object, stream.goal], axis=1)
    tasks = np.array([names.index(stream.episodes[e].task) for e in stream.episode])
    return states.astype(np.float32), tasks


def run_memory(
    name: str, budget_tokens: int, records: list[FrameRecord], questions: list[Question], text: TextCache
) -> tuple[dict[str, Evidence], dict[str, Any]]:
    """Stream every frame into a fresh memory; snapshot the evidence at each question's frame."""
    memory = make_memory(name, budget_tokens, text_encoder=text.encoder)
    asked = defaultdict(list)
    for q in questions:
        asked[q.frame].append(q)
    evidence: dict[str, Evidence] = {}
    occupancy = []
    started = time.perf_counter()
    for record in records:
        memory.write(record, question_arrives=record.index in asked)
        for q in asked.get(record.index, []):
            evidence[q.id] = memory.query(q.time, text(q.question))
        occupancy.append(memory.stats()["tokens"])
    seconds = time.perf_counter() - started
    stats = memory.stats()
    stats["ms_per_frame_with_queries"] = 1000 * seconds / max(1, len(records))
    stats["occupancy_first_half_max"] = max(occupancy[: len(occupancy) // 2] or [0])
    stats["occupancy_second_half_max"] = max(occupancy[len(occupancy) // 2 :] or [0])
    return evidence, stats


def perception_quality(streams: list[Stream], records: list[list[FrameRecord]]) -> dict[str, float]:
    """How well the encoder's perceived object position matches the simulator's.

    Over every frame of ``streams``, and over each task's first frame (what the question about the start of the
    previous task needs). ``pre_grasp_region_agreement``: how often a frame of a task before its first gripper
    close shows the object in the quarter where the task started, i.e. how well a reader answering that question
    from such a frame could do.
    """

    def agreement(seen: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
        errors = np.linalg.norm(seen[:, :2] - truth[:, :2], axis=1)
        return float(100 * np.median(errors)), float(np.mean([region(a) == region(b) for a, b in zip(seen, truth)]))

    truth = np.concatenate([s.object for s in streams])
    seen = np.array([r.facts["object_position"] for frames in records for r in frames])
    starts = [(frames[e.start], s.object[e.start]) for s, frames in zip(streams, records) for e in s.episodes]
    error, regions = agreement(seen, truth)
    start_error, start_regions = agreement(
        np.array([r.facts["object_position"] for r, _ in starts]), np.array([t for _, t in starts])
    )
    pre_grasp = [
        region(frames[f].facts["object_position"]) == region(s.object[e.start])
        for s, frames in zip(streams, records)
        for e in s.episodes
        for f in range(e.start, next(iter(gripper_closes(s, e.start + 1, e.end)), e.end))
    ]
    return {
        "median_xy_error_cm": error,
        "region_agreement": regions,
        "frames": len(truth),
        "task_start_median_xy_error_cm": start_error,
        "task_start_region_agreement": start_regions,
        "task_starts": len(starts),
        "pre_grasp_region_agreement": float(np.mean(pre_grasp)),
        "pre_grasp_frames": len(pre_grasp),
    }


def oracle_evidence(records: list[FrameRecord], question: Question) -> Evidence:
    """Every frame up to the question, one token each (the budget-free ceiling)."""
    items = [MemoryItem(r.index, r.time, FUZZY, r.embedding[None], r.facts) for r in records[: question.frame + 1]]
    return Evidence(question.time, items, [], path="oracle")


def source_evidence(
    runs: dict[tuple[str, int, int], tuple[dict[str, Evidence], dict[str, Any]]],
    records: list[list[FrameRecord]],
    sid: int,
    q: Question,
    source: str,
    frames: int | None = None,
) -> Evidence | None:
    """What a reader reads for ``q``: nothing (``"blind"``), every frame (``"oracle"``), or a memory's evidence."""
    if source == "blind":
        return None
    if source == "oracle":
        return oracle_evidence(records[sid], q)
    return runs[(source, frames, sid)][0][q.id]


def make_example(q: Question, records: list[FrameRecord], evidence: Evidence | None, text: TextCache) -> ReaderExample:
    """The reader's input for a question."""
    now = records[q.frame]
    options = np.stack([text(o) for o in q.options])
    return example_from_evidence(
        text(q.question), options, now.tokens, now.facts, evidence, text, q.answer, q.template,
        question_anchor(q.question),
    )  # fmt: skip


def training_examples(
    questions: list[tuple[int, Question]],
    sources: list[tuple[str, int]],
    per_question: int,
    make,  # noqa: ANN001 - callable (stream id, question, source) -> ReaderExample
    rng: np.random.Generator,
) -> list[ReaderExample]:
    """The reader's training set: each question read from the oracle and ``per_question`` random memories.

    One reader serves every policy and budget, so it must see them all; sampling a few per question rather
    than all of them lets it see many more distinct questions for the same number of examples.
    """
    out = []
    for sid, q in questions:
        chosen = rng.choice(len(sources), size=min(per_question, len(sources)), replace=False)
        out.extend(make(sid, q, sources[i]) for i in sorted(chosen))
        out.append(make(sid, q, ("oracle", None)))
    return out


def reader_split(config: BenchConfig) -> tuple[range, range]:
    """The training streams whose questions train the readers, and the last ones, which judge the candidates."""
    first_judge = config.train_streams - config.selection_streams
    return range(first_judge), range(first_judge, config.train_streams)


def evidence_retained(q: Question, evidence: Evidence) -> bool:
    """Whether a frame from the evidence span is still in memory (as an item or a note's key frame)."""
    start, end = q.evidence
    times = [i.time for i in evidence.items] + [k.time for n in evidence.notes for k in n.key_frames]
    return any(start - 1e-6 <= t <= end + 1e-6 for t in times)


def run_settings(config: BenchConfig, data: str | Path) -> dict[str, Any]:
    """What a run's trained stages depend on: its settings and the demos (their index's checksum)."""
    settings = {"config": asdict(config), "demos_index_sha256": file_sha256(Path(data) / INDEX_NAME)}
    return as_saved(settings)


# What the frame encoder's training reads (the training streams' plan and frames, the scenes, its steps and seed):
# runs that differ only elsewhere (the readers' settings, budgets, policies, questions) train the same encoder,
# bit for bit on one machine (BENCHMARKS.md), so they share it.
ENCODER_SETTINGS = (
    "train_streams", "test_streams", "episodes_per_stream", "frame_stride", "encoder_steps",
    "encoder_scenes_per_task", "seed",
)  # fmt: skip


def shared_encoder(workdir: Path, config: BenchConfig, data: str | Path) -> Path | None:
    """A trained encoder kept by another run beside ``workdir`` with the same encoder settings and demos (or None).

    Folders whose ``bench.json`` is missing, unreadable or lacks one of the settings are passed over.
    """
    wanted = run_settings(config, data)
    if not workdir.parent.is_dir():
        return None
    for other in sorted(workdir.parent.iterdir()):
        if other == workdir or not (other / "encoder").is_dir():
            continue
        try:
            stored = json.loads((other / "bench.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        saved = stored.get("config") if isinstance(stored, dict) else None
        if not isinstance(saved, dict) or stored.get("demos_index_sha256") != wanted["demos_index_sha256"]:
            continue
        if all(key in saved and saved[key] == wanted["config"][key] for key in ENCODER_SETTINGS):
            return other / "encoder"
    return None


def default_workdir(config: BenchConfig, data: str | Path, root: str | Path = "runs/memory/bench") -> Path:
    """``root/<hash of the settings>``: the same command finds its own interrupted run, other settings another."""
    digest = hashlib.sha256(json.dumps(run_settings(config, data), sort_keys=True).encode()).hexdigest()
    return Path(root) / digest[:12]


def prepare_workdir(workdir: Path, config: BenchConfig, data: str | Path) -> None:
    """Record the settings the stages in ``workdir`` are trained with; refuse a folder kept for other settings."""
    settings, path = run_settings(config, data), workdir / "bench.json"
    if not path.is_file():
        write_json_atomic(path, settings)
        return
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise MemoryInputError(f"{path} is corrupt ({error}); delete {workdir} to start over") from error
    # more reader candidates only add stages after the kept ones, which stay valid; a folder kept before
    # selection_streams existed trained its readers on every training stream
    saved = stored.get("config", {})
    changed = settings_differences(
        saved,
        settings["config"],
        may_change=("reader_candidates",),
        defaults={"selection_streams": 0, "reader_attention_dropout": 0.1},
    )
    removed = sorted(set(saved) - set(settings["config"]))
    if removed:  # the stages were trained with settings this version no longer has
        changed.append(f"made with settings this version no longer has: {', '.join(removed)}")
    if stored.get("demos_index_sha256") != settings["demos_index_sha256"]:
        changed.append("the demos differ (their index.json changed)")
    if changed:
        raise MemoryInputError(
            f"{workdir} holds the stages of a benchmark run with other settings ({'; '.join(changed)}); "
            "pass another --workdir, or delete that folder to start over"
        )


def trained_encoder(
    train: list[Stream], config: BenchConfig, stored: Path | None, progress: bool = False, checkpoint_every: int = 250
) -> ProbeFrameEncoder:
    """The probe frame encoder trained on the training streams and fresh scenes, or the one kept in ``stored``.

    Kept as a training checkpoint, with torch's random state after the training: loading restores it, so the
    readers trained next start from the same initial weights as in an uninterrupted run. While it trains, its
    state is kept every ``checkpoint_every`` steps (``in_progress``): a run killed mid-training goes on from there.
    """
    if stored is not None and stored.exists():
        encoder = ProbeFrameEncoder()
        load_checkpoint(stored, model=encoder)
        return encoder.eval()
    frames = [s.images for s in train]
    states, tasks = (list(part) for part in zip(*(stream_states(s) for s in train)))
    if config.encoder_scenes_per_task:
        scenes = reset_scenes(
            sorted({e.task for s in train for e in s.episodes}), config.encoder_scenes_per_task,
            image_size=train[0].images.shape[1], seed=config.seed, progress=progress,
        )  # fmt: skip
        for part, extra in zip((frames, states, tasks), scenes):
            part.append(extra)
    encoder = train_probe_encoder(
        np.concatenate(frames), np.concatenate(states), np.concatenate(tasks), steps=config.encoder_steps,
        seed=config.seed, progress=progress, progress_folder=in_progress(stored), checkpoint_every=checkpoint_every,
    )  # fmt: skip
    if stored is not None:
        save_checkpoint(stored, model=encoder, step=config.encoder_steps)
        shutil.rmtree(in_progress(stored), ignore_errors=True)
    return encoder


def in_progress(stored: Path | None) -> Path | None:
    """Where a stage's training state is kept while it trains (``<stage>.partial``): a killed run resumes there."""
    return None if stored is None else stored.with_name(stored.name + ".partial")


def trained_reader(
    reader: MemoryReader, examples: list[ReaderExample], steps: int, seed: int, stored: Path | None, **options: Any
) -> float:
    """Train ``reader`` (``train_reader``'s ``options``), or load the one kept in ``stored``; its final loss.

    Kept like the encoder, with torch's random state after the training, which the next reader starts from.
    """
    if stored is not None and stored.exists():
        return float(load_checkpoint(stored, model=reader)[1]["final_loss"])
    losses = train_reader(reader, examples, steps=steps, seed=seed, progress_folder=in_progress(stored), **options)
    final_loss = float(np.mean(losses[-50:]))
    if stored is not None:
        save_checkpoint(stored, model=reader, step=steps, metadata={"final_loss": final_loss, "seed": seed})
        shutil.rmtree(in_progress(stored), ignore_errors=True)
    return final_loss


def run_benchmark(
    data: str | Path,
    config: BenchConfig,
    progress: bool = True,
    workdir: str | Path | None = None,
    heldout_data: str | Path | None = None,
    heldout_streams: int = 0,
    checkpoint_every: int = 250,
) -> dict[str, Any]:
    """Build streams, train encoder and readers, evaluate every policy and budget; returns the results.

    With ``workdir``, the trained encoder and readers are kept there as each finishes, and a later call with the
    same settings and demos loads them instead of training again (an interrupted run resumes; the results are
    the same as an uninterrupted run's). ``results["stages_loaded"]`` names what was loaded. A stage in training
    keeps its progress every ``checkpoint_every`` steps (``<stage>.partial``), which a resumed run goes on from.
    A run without an encoder of its own copies one kept beside ``workdir`` by a run with the same encoder
    settings (``shared_encoder``; ``results["encoder_shared_from"]``): on one machine, training it again gives
    the same weights.

    With ``heldout_streams``, the trained stages are also evaluated on that many streams chained from a second
    demo collection, ``heldout_data`` (``results["heldout"]``, the same figures as the main test set's). They
    train nothing, so they are not among the settings the stages are kept under: a finished run evaluated on
    more held-out streams loads its stages and trains nothing again.
    """
    from tqdm import tqdm

    heldout_plans = []  # checked before anything is trained
    if heldout_streams:
        if heldout_data is None:
            raise ValueError("heldout_streams needs heldout_data: a demo collection no training stream draws from")
        check_heldout_demos(data, heldout_data)
        heldout_plans = plan_streams(heldout_data, heldout_streams, config.episodes_per_stream, config.seed)

    started = time.perf_counter()

    def stage(name: str) -> Path | None:
        """Where a trained stage is kept (None: nowhere)."""
        return None if workdir is None else Path(workdir) / name

    encoder_from = None
    if workdir is not None:
        prepare_workdir(Path(workdir), config, data)
        kept = stage("encoder")
        encoder_from = None if kept.exists() else shared_encoder(Path(workdir), config, data)
        if encoder_from is not None:  # copied, so each folder holds every stage it was evaluated with
            with atomic_directory(kept) as tmp:
                shutil.copytree(encoder_from, tmp, dirs_exist_ok=True)

    candidates = max(config.readers, config.reader_candidates)
    names = ("encoder", *(f"reader-{number}" for number in range(candidates)), "blind")
    loaded = [name for name in names if (path := stage(name)) is not None and path.exists()]
    train_plans, test_plans = plan_benchmark_streams(
        data, config.train_streams, config.test_streams, config.episodes_per_stream, config.seed
    )
    plans = train_plans + test_plans
    streams = [
        build_stream(data, plan, frame_stride=config.frame_stride)
        for plan in tqdm(plans, desc="streams", disable=not progress)
    ]
    train, test = streams[: config.train_streams], streams[config.train_streams :]
    encoder = trained_encoder(train, config, stage("encoder"), progress, checkpoint_every)
    records = [encode_stream(encoder, s) for s in streams]
    questions = stream_questions(
        streams, config.seed, config.questions_per_stream, config.episodes_per_stream, config.older_tasks
    )
    # The test set is balanced as a whole, so no set-wide prior is worth anything there (the blind bound checks
    # it); the training set only per stream: balancing it as a whole leaves too few of the rarer templates
    # (grasps happen over one quarter of the table far more often) to learn them from.
    questions[config.train_streams :] = balance_across_streams(questions[config.train_streams :], config.seed + 1)
    text = TextCache()

    runs = run_memories(records, questions, config, text, progress)

    train_ids, test_ids = range(config.train_streams), range(config.train_streams, len(streams))
    reader_ids, judge_ids = reader_split(config)
    sources = [(p, f) for p in config.policies for f in config.budgets]
    rng = np.random.default_rng(config.seed)

    def read_as_in_training(stream_ids: range) -> list[ReaderExample]:
        return training_examples(
            [(sid, q) for sid in stream_ids for q in questions[sid]], sources, config.sources_per_question,
            lambda sid, q, source: make_example(q, records[sid], source_evidence(runs, records, sid, q, *source), text),
            rng,
        )  # fmt: skip

    mixed = read_as_in_training(reader_ids)
    dim = records[0][0].embedding.shape[0]
    text_dim = text.encoder.dim
    readers, reader_losses = [], []
    for number in range(candidates):
        reader = MemoryReader(dim, text_dim, attention_dropout=config.reader_attention_dropout)
        reader_losses.append(trained_reader(
            reader, mixed, config.reader_steps, config.seed + number, stage(f"reader-{number}"),
            progress=progress, pointer_loss_weight=config.pointer_loss_weight,
            balance_templates=config.balance_templates, checkpoint_every=checkpoint_every,
        ))  # fmt: skip
        readers.append(reader)
    selection = None
    if candidates > config.readers:  # keep the readers that learned the most templates
        held_out = config.selection_streams > 0
        judged = read_as_in_training(judge_ids) if held_out else mixed
        accuracies = [template_accuracy(reader, judged) for reader in readers]
        kept = select_readers(accuracies, config.readers)
        judged_on = f"{config.selection_streams} held-out training streams" if held_out else "training questions"
        selection = [
            {"seed": config.seed + number, "final_loss": reader_losses[number], "kept": number in kept,
             "judged_on": judged_on, "accuracy_per_template": accuracies[number]}
            for number in range(candidates)
        ]  # fmt: skip
        readers, reader_losses = [readers[i] for i in kept], [reader_losses[i] for i in kept]
    # always unbalanced: the bound the committed runs report
    blind = MemoryReader(dim, text_dim, use_memory=False, attention_dropout=config.reader_attention_dropout)
    blind_examples = [make_example(q, records[sid], None, text) for sid in train_ids for q in questions[sid]]
    trained_reader(blind, blind_examples, config.reader_steps // 2, config.seed, stage("blind"), progress=progress,
                   checkpoint_every=checkpoint_every)  # fmt: skip

    evaluation = evaluate(readers, blind, test_ids, streams, records, questions, runs, config, text)
    results: dict[str, Any] = {
        "config": asdict(config),
        "streams": {
            "train": len(train),
            "test": len(test),
            "frames_per_stream": [len(s) for s in streams],
            "test_questions": evaluation.pop("questions"),
            "test_templates": evaluation.pop("templates"),
        },
        "readers": config.readers,
        "training_templates": dict(sorted(Counter(e.template for e in mixed).items())),
        "reader_final_loss": reader_losses,
        "reader_selection": selection,
        "stages_loaded": loaded,
        "encoder_shared_from": None if encoder_from is None else str(encoder_from),
        **evaluation,
    }
    if heldout_plans:
        results["heldout"] = heldout_evaluation(
            heldout_data, heldout_plans, config, encoder, readers, blind, text, progress
        )
    results["update_ms_per_frame"] = measure_update_speed(records[config.train_streams], config)
    results["seconds"] = time.perf_counter() - started
    return results


def run_memories(
    records: list[list[FrameRecord]],
    questions: list[list[Question]],
    config: BenchConfig,
    text: TextCache,
    progress: bool = False,
) -> dict[tuple[str, int, int], tuple[dict[str, Evidence], dict[str, Any]]]:
    """Every policy at every budget over every stream: ``(policy, budget frames, stream) -> (evidence, stats)``."""
    from tqdm import tqdm

    runs = {}
    for stream_id in tqdm(range(len(records)), desc="memories", disable=not progress):
        for policy in config.policies:
            for frames in config.budgets:
                runs[(policy, frames, stream_id)] = run_memory(
                    policy, frames * config.clear_tokens, records[stream_id], questions[stream_id], text
                )
    return runs


def evaluate(
    readers: list[MemoryReader],
    blind: MemoryReader,
    stream_ids: range,
    streams: list[Stream],
    records: list[list[FrameRecord]],
    questions: list[list[Question]],
    runs: dict[tuple[str, int, int], tuple[dict[str, Evidence], dict[str, Any]]],
    config: BenchConfig,
    text: TextCache,
) -> dict[str, Any]:
    """The trained readers on the streams ``stream_ids``: every policy and budget, and the blind and oracle bounds.

    ``runs`` holds each memory's evidence at every question (``run_memories``). Besides the figures, returns the
    number of questions (``questions``) and how many each template has (``templates``).
    """
    test_questions = [q for sid in stream_ids for q in questions[sid]]
    test = [streams[sid] for sid in stream_ids]
    backward = np.array([q.mode == "backward" for q in test_questions])
    answers = np.array([q.answer for q in test_questions])

    def examples(source: str, frames: int | None = None) -> list[ReaderExample]:
        return [
            make_example(q, records[sid], source_evidence(runs, records, sid, q, source, frames), text)
            for sid in stream_ids
            for q in questions[sid]
        ]

    def score(choices: np.ndarray) -> dict[str, Any]:
        correct = choices == answers
        cells: dict[str, list[bool]] = defaultdict(list)
        for q, ok in zip(test_questions, correct):
            cells[q.cell].append(bool(ok))
            cells[f"mode:{q.mode}"].append(bool(ok))
            cells[f"template:{q.template}"].append(bool(ok))
        return {
            "overall": float(correct.mean()),
            **{c: float(np.mean(v)) for c, v in sorted(cells.items())},
            "questions": int(len(correct)),
        }

    def answer(examples_: list[ReaderExample]) -> tuple[np.ndarray, dict[str, list[float]]]:
        """The ensemble's choices and each reader's own accuracy (the spread it averages over), one pass each."""
        each = [option_probabilities(reader, examples_) for reader in readers]
        correct = [p.argmax(axis=1) == answers for p in each]
        alone = {"overall": [float(c.mean()) for c in correct],
                 "backward": [float(c[backward].mean()) if backward.any() else None for c in correct]}  # fmt: skip
        return np.mean(each, axis=0).argmax(axis=1), alone

    results: dict[str, Any] = {
        "questions": len(test_questions),
        "templates": dict(sorted(Counter(q.template for q in test_questions).items())),
        "cells": sorted({q.cell for q in test_questions}),
        "perceived_object": perception_quality(test, [records[sid] for sid in stream_ids]),
        "blind": score(predict(blind, examples("blind"))),
        "policies": {},
    }
    chosen, results["oracle_per_reader"] = answer(examples("oracle"))
    results["oracle"] = score(chosen)
    for policy in config.policies:
        for frames in config.budgets:
            policy_examples = examples(policy, frames)
            chosen, alone = answer(policy_examples)
            retained = [
                evidence_retained(q, runs[(policy, frames, q.stream)][0][q.id])
                for q, asked_back in zip(test_questions, backward)
                if asked_back
            ]
            stats = [runs[(policy, frames, sid)][1] for sid in stream_ids]
            latency_examples = policy_examples[:64]
            begun = time.perf_counter()
            predict(readers, latency_examples, batch_size=1)
            results["policies"][f"{policy}@{frames}"] = {
                "policy": policy,
                "budget_frames": frames,
                "budget_tokens": frames * config.clear_tokens,
                "accuracy": score(chosen),
                "accuracy_per_reader": alone,
                "backward_evidence_retained": float(np.mean(retained)) if retained else None,
                "peak_tokens": max(s["peak_tokens"] for s in stats),
                "occupancy_flat": all(s["occupancy_second_half_max"] <= s["budget_tokens"] for s in stats),
                "ms_per_frame_with_queries": float(np.mean([s["ms_per_frame_with_queries"] for s in stats])),
                "reader_ms_per_answer": 1000 * (time.perf_counter() - begun) / max(1, len(latency_examples)),
                "stream_to_budget_ratio": float(np.mean([len(s) for s in test]) / frames),
                "backward_by_history": accuracy_by_history(test_questions, chosen == answers, frames),
                "backward_by_evidence_age": accuracy_by_evidence_age(test_questions, chosen == answers),
            }
    results["backward_by_history_pooled"] = pool_bins(results["policies"], "backward_by_history")
    results["backward_by_evidence_age_pooled"] = pool_bins(results["policies"], "backward_by_evidence_age")
    return results


def check_heldout_demos(data: str | Path, heldout_data: str | Path) -> None:
    """Refuse held-out demos that share an episode (task and seed) with the training demos or were made otherwise.

    The frame encoder reads images of the training demos' size, and the streams must look alike (cameras aside).
    """
    train, heldout = DatasetIndex.load(data), DatasetIndex.load(heldout_data)
    made = {k: v for k, v in train.collection["signature"].items() if k != "cameras"}
    made_heldout = {k: v for k, v in heldout.collection["signature"].items() if k != "cameras"}
    if made != made_heldout:
        raise MemoryInputError(
            f"the held-out demos {heldout_data} were made with {made_heldout}, the training demos {data} with "
            f"{made}: collect the held-out demos with the training demos' settings"
        )
    shared = sorted({(e.task, e.seed) for e in train.episodes} & {(e.task, e.seed) for e in heldout.episodes})
    if shared:
        raise MemoryInputError(
            f"the held-out demos {heldout_data} share {len(shared)} episodes (task, seed) with the training demos "
            f"{data}, e.g. {shared[0]}: collect them with another seed"
        )


def heldout_evaluation(
    heldout_data: str | Path,
    plans: list[list[int]],
    config: BenchConfig,
    encoder: ProbeFrameEncoder,
    readers: list[MemoryReader],
    blind: MemoryReader,
    text: TextCache,
    progress: bool = False,
) -> dict[str, Any]:
    """The trained encoder and readers on streams chained from ``heldout_data`` (``evaluate``'s figures).

    ``plans``: each stream's episodes (``plan_streams``). The streams are asked like the benchmark's test streams
    (for ``config.seed``); only the demos differ (``check_heldout_demos``), so many more held-out questions can be
    asked than the training demos leave over.
    """
    streams, records, questions = heldout_questions(heldout_data, plans, config, encoder, progress)
    runs = run_memories(records, questions, config, text, progress)
    evaluation = evaluate(readers, blind, range(len(streams)), streams, records, questions, runs, config, text)
    return {
        "data": str(heldout_data),
        "demos_index_sha256": file_sha256(Path(heldout_data) / INDEX_NAME),
        "streams": {
            "test": len(streams),
            "frames_per_stream": [len(s) for s in streams],
            "test_questions": evaluation.pop("questions"),
            "test_templates": evaluation.pop("templates"),
        },
        **evaluation,
    }


def heldout_questions(
    heldout_data: str | Path, plans: list[list[int]], config: BenchConfig, encoder: ProbeFrameEncoder, progress: bool
) -> tuple[list[Stream], list[list[FrameRecord]], list[list[Question]]]:
    """The held-out streams, their frame records and their questions, asked as the test streams are."""
    from tqdm import tqdm

    streams = [
        build_stream(heldout_data, plan, frame_stride=config.frame_stride)
        for plan in tqdm(plans, desc="held-out streams", disable=not progress)
    ]
    records = [encode_stream(encoder, s) for s in streams]
    asked = stream_questions(
        streams, config.seed, config.questions_per_stream, config.episodes_per_stream, config.older_tasks
    )
    return streams, records, balance_across_streams(asked, config.seed + 1)


HISTORY_BINS = (0.0, 10.0, 20.0, 40.0, 80.0, float("inf"))  # frames seen when asked, in budgets
# seconds from the end of the evidence to the question (a task and the pause after it: ~3 s)
AGE_BINS = (0.0, 2.0, 4.0, 8.0, 16.0, float("inf"))


def binned_accuracy(
    values: np.ndarray, include: np.ndarray, correct: np.ndarray, edges: Sequence[float], unit: str
) -> dict[str, Any]:
    """Accuracy of the ``include``d questions per bin of ``values`` (``[low, high)``), and the values' spread."""
    bins = {}
    for low, high in zip(edges[:-1], edges[1:]):
        inside = include & (values >= low) & (values < high)
        label = f"{low:g}-{high:g}{unit}" if np.isfinite(high) else f">={low:g}{unit}"
        bins[label] = {
            "questions": int(inside.sum()),
            "correct": int(correct[inside].sum()),
            "accuracy": float(correct[inside].mean()) if inside.any() else None,
        }
    seen = values[include]
    spread = {"min": None, "median": None, "max": None}
    if seen.size:
        spread = {"min": float(seen.min()), "median": float(np.median(seen)), "max": float(seen.max())}
    return {"bins": bins, "spread": spread}


def accuracy_by_history(questions: Sequence[Question], correct: np.ndarray, budget_frames: int) -> dict[str, Any]:
    """Backward accuracy by how long the stream was when each question was asked, in multiples of the budget.

    Questions are asked anywhere after the first few tasks, so a stream "86x the budget" asks most of its
    questions at a shorter history; the memory's target (its margin at 20x the budget) is read from these bins.
    """
    ratios = np.array([(q.frame + 1) / budget_frames for q in questions])
    backward = np.array([q.mode == "backward" for q in questions])
    report = binned_accuracy(ratios, backward, correct, HISTORY_BINS, "x")
    return {"bins": report["bins"], "history_to_budget": report["spread"]}


def accuracy_by_evidence_age(questions: Sequence[Question], correct: np.ndarray) -> dict[str, Any]:
    """Backward accuracy by the evidence's age when asked (seconds from its end to the question): a forgetting curve.

    Uniform sampling thins every age alike as the stream grows; a FIFO window forgets the old first; a memory that
    keeps events should hold up at every age.
    """
    ages = np.array([q.time - q.evidence[1] for q in questions])
    backward = np.array([q.mode == "backward" for q in questions])
    report = binned_accuracy(ages, backward, correct, AGE_BINS, "s")
    return {"bins": report["bins"], "age_seconds": report["spread"]}


def pool_bins(rows: dict[str, dict[str, Any]], key: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Each memory policy's bins under ``key`` summed over its budgets (its margin at a stream length or an age)."""
    pooled: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows.values():
        bins = pooled.setdefault(row["policy"], {})
        for label, counts in row[key]["bins"].items():
            cell = bins.setdefault(label, {"questions": 0, "correct": 0})
            cell["questions"] += counts["questions"]
            cell["correct"] += counts["correct"]
    for bins in pooled.values():
        for cell in bins.values():
            cell["accuracy"] = cell["correct"] / cell["questions"] if cell["questions"] else None
    return pooled


def measure_update_speed(records: list[FrameRecord], config: BenchConfig, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per ``write`` given embeddings, per policy, at a 20-frame budget (long synthetic stream)."""
    speeds = {}
    stream = (records * repeats)[:10_000]
    stream = [FrameRecord(i, 0.05 * i, r.embedding, r.tokens, r.facts) for i, r in enumerate(stream)]
    for policy in config.policies:
        memory = make_memory(policy, 20 * config.clear_tokens, text_encoder=_cached_encoder())
        begun = time.perf_counter()
        for record in stream:
            memory.write(record)
        speeds[policy] = 1000 * (time.perf_counter() - begun) / len(stream)
    return speeds


@lru_cache(maxsize=1)
def _cached_encoder():  # noqa: ANN202 - the text encoder, loaded once
    from cortico.perception.text_encoder import TextEncoder

    return TextEncoder()
