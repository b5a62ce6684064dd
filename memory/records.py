"""What streams into memory and what comes back out: frames, retained items, notes, evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

CLEAR, FUZZY = "clear", "fuzzy"


class MemoryInputError(ValueError):
    """A frame or a question does not fit the memory's contract (shape, dtype, NaN, time order)."""


def gripper_closed(before: float, after: float) -> bool:
    """Whether the gripper command went from open (>= 0.5) to closed between two frames."""
    return before >= 0.5 > after


@dataclass(frozen=True)
class FrameRecord:
    """One frame of the stream, as the memory receives it.

    Attributes:
        index: position in the stream (0, 1, 2, ...).
        time: seconds since the stream began (strictly increasing).
        embedding: ``(D,)`` float32 unit-norm global embedding of the frame.
        tokens: ``(P, D)`` float32 patch tokens (kept for clear memories; fuzzy ones keep the global embedding).
        facts: what the agent knows about itself at that moment (instruction, gripper state, ...); never the
            privileged simulator state.
    """

    index: int
    time: float
    embedding: np.ndarray
    tokens: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryItem:
    """A frame kept in memory: clear (all its tokens) or fuzzy (its global embedding only)."""

    index: int
    time: float
    fidelity: str
    vectors: np.ndarray  # (tokens, D)
    facts: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def cost(self) -> int:
        """Tokens this item occupies (computed once: budgets are checked several times per frame)."""
        return int(self.vectors.shape[0])

    @cached_property
    def direction(self) -> np.ndarray:
        """The unit-length mean of the item's tokens (computed once; merging compares items by it)."""
        mean = self.vectors.sum(0) / self.vectors.shape[0]  # np.mean's and np.linalg.norm's values, less overhead
        return mean / max(float(np.sqrt(mean.dot(mean))), 1e-12)


@dataclass(frozen=True)
class MemoryNote:
    """A compact note about a closed stretch of the stream (a segment or a consolidated event).

    ``embedding`` is the pooled frame embedding of the stretch; ``facts`` holds its time span and what the
    agent observed about itself (instruction, gripper changes and where it last closed, whether the task
    succeeded). One token.
    """

    start: float
    end: float
    embedding: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)
    key_frames: tuple[MemoryItem, ...] = ()

    @cached_property
    def cost(self) -> int:
        """Tokens: one for the note, plus its key frames (computed once)."""
        return 1 + sum(item.cost for item in self.key_frames)


@dataclass
class Evidence:
    """What a memory returns for a question asked at ``time``: items and notes, no later than ``time``."""

    time: float
    items: list[MemoryItem]
    notes: list[MemoryNote]
    path: str = "all"  # "all" (the whole memory), "fast" (summaries) or "recall" (retrieved frames)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Tokens the evidence holds."""
        return sum(i.cost for i in self.items) + sum(n.cost for n in self.notes)

    def episodes(self) -> list[Episode]:
        """The commands the memory still knows of, oldest first, from notes and retained frames.

        Frames and notes carry the agent's own facts (``task_number``, ``task``, ``instruction``,
        ``success``); everything with the same ``task_number`` is one episode, starting at the earliest time
        seen and successful if any of its frames or notes saw success. A note merged from several commands
        lends its success to each of them (the memory no longer tells them apart). Notes without command
        numbers give one episode per instruction.
        """
        found: dict[Any, Episode] = {}

        def add(keys: list[Any], labels: list[Any], start: float, end: float, success: bool) -> None:
            for position, key in enumerate(keys):
                label = labels[min(position, len(labels) - 1)] if labels else None
                if key not in found:
                    number = key if isinstance(key, int) else None
                    found[key] = Episode(number, start, end, label, success)
                episode = found[key]
                episode.start, episode.end = min(episode.start, start), max(episode.end, end)
                episode.label = episode.label or label
                episode.success = episode.success or success

        for k, note in enumerate(self.notes):
            facts = note.facts
            labels = facts.get("tasks") or facts.get("instructions") or []
            keys = [int(n) for n in facts.get("task_numbers", [])] or [("note", k, i) for i in range(len(labels))]
            add(keys, labels, note.start, note.end, bool(facts.get("success", False)))
        for item in self.items:
            if "task_number" in item.facts:
                label = item.facts.get("task") or item.facts.get("instruction")
                add([int(item.facts["task_number"])], [label], item.time, item.time, bool(item.facts.get("success")))
        return sorted(found.values(), key=lambda e: e.start)


@dataclass
class Episode:
    """One command as memory recalls it: its number, time span, task (or instruction) and success."""

    number: int | None
    start: float
    end: float
    label: str | None
    success: bool


class StreamingMemory(Protocol):
    """The memory contract: ``write`` every frame in time order, ``query`` at any time, never over budget."""

    budget: int

    def write(self, frame: FrameRecord, question_arrives: bool = False) -> None:
        """Take the next frame (``question_arrives``: a question is asked at this frame; keep it clear)."""
        ...

    def query(self, time: float, question_embedding: np.ndarray | None = None) -> Evidence:
        """Evidence for a question asked at ``time`` (not earlier than the newest written frame)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Tokens used and peak, frames seen, clear/fuzzy/discarded counts."""
        ...


def check_frame(frame: FrameRecord, dim: int | None, last_time: float | None) -> None:
    """Refuse malformed frames with a message that names the problem."""
    embedding = frame.embedding
    if not isinstance(embedding, np.ndarray) or embedding.ndim != 1 or embedding.dtype != np.float32:
        raise MemoryInputError(
            f"frame {frame.index}: the embedding must be a 1-D float32 array, got "
            f"{getattr(embedding, 'shape', type(embedding).__name__)} {getattr(embedding, 'dtype', '')}"
        )
    if dim is not None and embedding.shape[0] != dim:
        raise MemoryInputError(f"frame {frame.index}: embedding has {embedding.shape[0]} values, the stream uses {dim}")
    if frame.tokens.ndim != 2 or frame.tokens.shape[1] != embedding.shape[0]:
        raise MemoryInputError(
            f"frame {frame.index}: tokens must be (P, {embedding.shape[0]}), got {frame.tokens.shape}"
        )
    if not (np.isfinite(embedding).all() and np.isfinite(frame.tokens).all()):
        raise MemoryInputError(f"frame {frame.index}: the embedding or tokens contain NaN or inf")
    if last_time is not None and frame.time <= last_time:
        raise MemoryInputError(f"frame {frame.index}: time {frame.time} does not come after {last_time}")


def check_budget(budget: int, clear_cost: int) -> int:
    """A token budget must hold at least one clear frame."""
    if not isinstance(budget, (int, np.integer)) or budget < clear_cost:
        raise MemoryInputError(
            f"the memory budget must be an integer >= {clear_cost} tokens (one clear frame), got {budget!r}"
        )
    return int(budget)


def check_question_time(time: float, last_time: float | None, max_gap: float = 1.0) -> None:
    """Refuse a question asked before the newest frame or in the stream's future.

    Before: the memory has moved on. Future: more than ``max_gap`` seconds after the newest frame, whose
    frames have not arrived.
    """
    if last_time is None:
        raise MemoryInputError("no frame has been seen yet; a question needs at least one frame of the stream")
    if time < last_time - 1e-9:
        raise MemoryInputError(
            f"a question at t={time} s comes before the newest frame (t={last_time} s); ask at or after it"
        )
    if time > last_time + max_gap:
        raise MemoryInputError(
            f"a question at t={time} s is in the future of the stream (newest frame at t={last_time} s)"
        )
