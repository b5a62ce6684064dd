"""Hippocampal memory (HippoMM) on top of curvature retention, with segment notes (Think While Watching).

- Short term: a :class:`~cortico.memory.buffers.CurvatureMemory` holds salient recent frames.
- Pattern separation: the stream is cut into events where a frame's similarity to the running event drops
  below a threshold (or the event reaches a maximum length, or a new command begins).
- Consolidation: a closed event becomes a long-term note: its pooled embedding, its time span, what the
  agent observed about itself (instruction, gripper changes and where the gripper last closed, success),
  and a few mutually distinct key frames (cosine similarity below ``key_frame_similarity`` to each other,
  the event's first frame always among them), kept fuzzy. When long-term memory is over its share of the
  budget, the oldest notes lose their key frames (the first frame last), then the oldest notes merge.
- The open event is summarised too: a query also returns a running note of the event still being observed
  (one token, without key frames), so the memory knows the present command's outcome even when the frame that
  saw it was not retained.
- Retrieval: a question's text embedding is compared with each note's instruction embedding (a text
  question retrieves events, and through them their frames). Above ``fast_threshold`` the answer comes from
  the summaries (fast path); otherwise the most similar events and the short-term frames around them are
  recalled (detailed path). The choice is recorded in the evidence.

Strictly causal: notes are written when an event closes, and the running note is made at query time, both
from frames already seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cortico.memory.buffers import CurvatureConfig, CurvatureMemory
from cortico.memory.records import (
    FUZZY,
    Evidence,
    FrameRecord,
    MemoryItem,
    MemoryNote,
    check_budget,
    check_question_time,
    gripper_closed,
)


@dataclass(frozen=True)
class HippocampusConfig:
    """Settings of the hippocampal memory.

    Attributes:
        long_term_fraction: the most of the token budget long-term notes and key frames may hold; short-term
            frames get the rest and whatever the notes leave free.
        separation_similarity: a frame less similar than this to the running event starts a new event.
        max_event_frames: an event closes after this many frames regardless (fixed-length segments).
        key_frame_similarity: key frames of an event stay below this cosine similarity to each other.
        max_key_frames: key frames kept per event.
        fast_threshold: question-to-note similarity above which the summaries answer (fast path).
        recall_events: events recalled on the detailed path.
    """

    long_term_fraction: float = 0.5
    separation_similarity: float = 0.9
    max_event_frames: int = 80
    key_frame_similarity: float = 0.9
    max_key_frames: int = 2
    fast_threshold: float = 0.7
    recall_events: int = 2
    curvature: CurvatureConfig = field(default_factory=CurvatureConfig)


class _OpenEvent:
    """The event being observed: running mean, time span, key-frame candidates, self-observations."""

    def __init__(self, frame: FrameRecord, previous_gripper: float | None = None) -> None:
        self.start = self.end = frame.time
        self.total = frame.embedding.astype(np.float64).copy()
        self.count = 1
        self.instructions: list[str] = []
        self.gripper_changes = 0
        self.success = False
        self.task_numbers: list[int] = []
        self.tasks: list[str | None] = []  # the task of each command number, when the agent knows it
        self.keys: list[FrameRecord] = []  # the event's first frame stays first: the scene as the event began
        self.close_position: tuple[float, ...] | None = None  # where the gripper last closed in this event
        self.close_time: float | None = None
        self.close_task: int | None = None  # the command number that close belongs to
        # the gripper command of the frame before (the previous event's last), so a change at the boundary counts
        self._last_gripper = frame.facts.get("gripper_open") if previous_gripper is None else previous_gripper
        self.add(frame, first=True)

    @property
    def mean(self) -> np.ndarray:
        vector = self.total / self.count
        return (vector / max(np.linalg.norm(vector), 1e-12)).astype(np.float32)

    def add(self, frame: FrameRecord, config: HippocampusConfig | None = None, first: bool = False) -> None:
        if not first:
            self.total += frame.embedding
            self.count += 1
            self.end = frame.time
        instruction = frame.facts.get("instruction")
        if instruction and instruction not in self.instructions:
            self.instructions.append(instruction)
        gripper = frame.facts.get("gripper_open")
        if gripper is not None and self._last_gripper is not None and gripper != self._last_gripper:
            self.gripper_changes += 1
            if gripper_closed(self._last_gripper, gripper) and frame.facts.get("gripper_position") is not None:
                self.close_position, self.close_time = tuple(frame.facts["gripper_position"]), frame.time
                self.close_task = frame.facts.get("task_number")
        self._last_gripper = gripper
        self.success = self.success or bool(frame.facts.get("success", False))
        if "task_number" in frame.facts and frame.facts["task_number"] not in self.task_numbers:
            self.task_numbers.append(int(frame.facts["task_number"]))
            self.tasks.append(frame.facts.get("task"))
        similar = [float(frame.embedding @ k.embedding) for k in self.keys]
        limit = config.key_frame_similarity if config else 0.9
        if all(s < limit for s in similar):
            if config is None or len(self.keys) < config.max_key_frames:
                self.keys.append(frame)
            elif len(self.keys) > 1:  # replace the least distinct later key frame when the new one adds more
                redundancy = [max(float(k.embedding @ o.embedding) for o in self.keys if o is not k) for k in self.keys]
                worst = 1 + int(np.argmax(redundancy[1:]))
                if max(similar) < redundancy[worst]:
                    self.keys[worst] = frame


class CorticoMemory:
    """Curvature short-term memory + hippocampal long-term notes (see module doc).

    Args:
        budget: total tokens (short-term frames + long-term notes and key frames).
        clear_tokens: tokens of a clear frame.
        text_encoder: encodes instructions for the notes and questions for retrieval (optional; without
            it, retrieval falls back to the newest events).
        config: hippocampal settings.
    """

    name = "cortico"

    def __init__(
        self, budget: int, clear_tokens: int = 4, text_encoder: Any = None, config: HippocampusConfig | None = None
    ) -> None:
        self.config = config or HippocampusConfig()
        self.budget = check_budget(budget, clear_tokens)
        self.long_budget = max(1, int(round(self.budget * self.config.long_term_fraction)))
        self.long_budget = self.budget - max(clear_tokens, self.budget - self.long_budget)
        self.short = CurvatureMemory(self.budget, clear_tokens, self.config.curvature)  # no notes yet
        self.text_encoder = text_encoder
        self.notes: list[MemoryNote] = []
        self._event: _OpenEvent | None = None
        self._instruction_embeddings: dict[str, np.ndarray] = {}
        self.peak = 0
        self.events_closed = 0

    # ------------------------------------------------------------------------------------------ write
    @property
    def used(self) -> int:
        """Tokens held (short term + long term)."""
        return self.short.used + self._long_used()

    def _long_used(self) -> int:
        return sum(note.cost for note in self.notes) + self._open_note_cost()

    def _open_note_cost(self) -> int:
        """One token for the running note of the open event, when long-term memory has room for any note."""
        return 1 if self._event is not None and self.long_budget >= 1 else 0

    def write(self, frame: FrameRecord, question_arrives: bool = False) -> None:
        """Short-term retention, event segmentation and consolidation for one frame.

        Long-term notes are capped at their share of the budget; the short-term frames may use every
        token the notes leave free, and give tokens back (oldest first) when a new note needs them.
        """
        self.short.write(frame, question_arrives)
        event = self._event
        if event is None:
            self._event = _OpenEvent(frame)
        elif self._boundary(event, frame):
            self._consolidate(event)
            self._event = _OpenEvent(frame, previous_gripper=event._last_gripper)
        else:
            event.add(frame, self.config)
        self._fit_long_term()
        long_used = self._long_used()  # summed once: a long stream holds many notes
        self.short.resize(self.budget - long_used)
        used = self.short.used + long_used
        if used > self.budget:
            raise AssertionError(f"cortico memory holds {used} tokens over its budget {self.budget}")
        self.peak = max(self.peak, used)

    def _boundary(self, event: _OpenEvent, frame: FrameRecord) -> bool:
        """Pattern separation: a similarity drop, a new command (instruction or number), or the maximum length."""
        instruction = frame.facts.get("instruction")
        if instruction and event.instructions and instruction != event.instructions[-1]:
            return True
        number = frame.facts.get("task_number")
        if number is not None and event.task_numbers and number != event.task_numbers[-1]:
            return True  # the same command given twice in a row is still two commands
        if event.count >= self.config.max_event_frames:
            return True
        return float(frame.embedding @ event.mean) < self.config.separation_similarity

    def _consolidate(self, event: _OpenEvent) -> None:
        self.notes.append(self._note(event))
        self.events_closed += 1

    def _note(self, event: _OpenEvent, with_key_frames: bool = True) -> MemoryNote:
        """The note of an event: its summary facts and (when closed) its key frames."""
        facts = {
            "instructions": list(event.instructions),
            "gripper_changes": event.gripper_changes,
            "success": event.success,
            "frames": event.count,
            "task_numbers": list(event.task_numbers),
        }
        if any(event.tasks):
            facts["tasks"] = list(event.tasks)
        if event.close_position is not None:
            facts["close_position"], facts["close_time"] = event.close_position, event.close_time
            if event.close_task is not None:
                facts["close_task"] = int(event.close_task)
        if event.instructions and self.text_encoder is not None:
            facts["instruction_embedding"] = self._embed(event.instructions[-1])
        keys = (
            tuple(MemoryItem(k.index, k.time, FUZZY, k.embedding[None].astype(np.float32), dict(k.facts))
                  for k in event.keys)
            if with_key_frames
            else ()
        )  # fmt: skip
        return MemoryNote(event.start, event.end, event.mean, facts, keys)

    def _fit_long_term(self) -> None:
        """Drop key frames of the oldest notes, then merge the oldest notes, until long term fits its share."""
        while self._long_used() > self.long_budget:
            with_keys = next((i for i, n in enumerate(self.notes) if n.key_frames), None)
            if with_keys is not None:
                note = self.notes[with_keys]
                self.notes[with_keys] = MemoryNote(  # the start frame goes last
                    note.start, note.end, note.embedding, note.facts, note.key_frames[:-1]
                )
            elif len(self.notes) >= 2:
                a, b = self.notes[0], self.notes[1]
                pooled = a.embedding + b.embedding
                facts = {
                    "instructions": list(
                        dict.fromkeys(a.facts.get("instructions", []) + b.facts.get("instructions", []))
                    ),
                    "gripper_changes": a.facts.get("gripper_changes", 0) + b.facts.get("gripper_changes", 0),
                    "success": a.facts.get("success", False) or b.facts.get("success", False),
                    "frames": a.facts.get("frames", 0) + b.facts.get("frames", 0),
                    "merged": a.facts.get("merged", 1) + b.facts.get("merged", 1),
                    "task_numbers": sorted(set(a.facts.get("task_numbers", [])) | set(b.facts.get("task_numbers", []))),
                }
                if "tasks" in a.facts or "tasks" in b.facts:
                    known = {n: t for note in (a, b) for n, t in zip(note.facts.get("task_numbers", []),
                                                                       note.facts.get("tasks", []))}  # fmt: skip
                    facts["tasks"] = [known.get(n) for n in facts["task_numbers"]]
                if "instruction_embedding" in b.facts:
                    facts["instruction_embedding"] = b.facts["instruction_embedding"]
                newer_close = next((n.facts for n in (b, a) if "close_position" in n.facts), None)
                if newer_close is not None:
                    facts.update(close_position=newer_close["close_position"], close_time=newer_close["close_time"])
                    if "close_task" in newer_close:
                        facts["close_task"] = newer_close["close_task"]
                merged = MemoryNote(
                    a.start, b.end, (pooled / max(np.linalg.norm(pooled), 1e-12)).astype(np.float32), facts
                )
                self.notes[:2] = [merged]
            else:
                self.notes.pop(0)

    def _embed(self, text: str) -> np.ndarray:
        if text not in self._instruction_embeddings:
            self._instruction_embeddings[text] = self.text_encoder.embed(text)[0].numpy()
        return self._instruction_embeddings[text]

    # ------------------------------------------------------------------------------------------ query
    def query(self, time: float, question_embedding: np.ndarray | None = None) -> Evidence:
        """All retained items and notes, with the retrieval path recorded (fast: summaries, recall: frames)."""
        check_question_time(time, self.short._last_time)
        notes = list(self.notes)
        if self._open_note_cost():  # the event still running: what the agent is doing now, so far
            notes.append(self._note(self._event, with_key_frames=False))
        detail: dict[str, Any] = {"events_closed": self.events_closed}
        path = "recall"
        if question_embedding is not None and notes:
            scored = [(float(question_embedding @ n.facts["instruction_embedding"]), i) for i, n in enumerate(notes)
                      if "instruction_embedding" in n.facts]  # fmt: skip
            if scored:
                scored.sort(reverse=True)
                best = scored[0][0]
                detail["best_similarity"] = best
                if best >= self.config.fast_threshold:
                    path = "fast"
                    detail["retrieved_notes"] = [scored[0][1]]
                else:
                    detail["retrieved_notes"] = [i for _, i in scored[: self.config.recall_events]]
                    spans = [(notes[i].start, notes[i].end) for i in detail["retrieved_notes"]]
                    detail["retrieved_items"] = [
                        item.index
                        for item in self.short.items
                        if any(s - 1.0 <= item.time <= e + 1.0 for s, e in spans)
                    ]
        return Evidence(time, list(self.short.items), notes, path=path, detail=detail)

    def stats(self) -> dict[str, Any]:
        """Budget use of both stores."""
        short = self.short.stats()
        return {
            **short,
            "memory": self.name,
            "budget_tokens": self.budget,
            "tokens": self.used,
            "peak_tokens": self.peak,
            "short_term_tokens": self.short.used,
            "long_term_tokens": self._long_used(),
            "notes": len(self.notes),
            "events_closed": self.events_closed,
        }
