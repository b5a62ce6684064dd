"""Reading ``cortico language learn --stream FILE``: JSON lines of new commands or questions to learn.

Accepted lines (one JSON object each; blank lines and ``#`` comments are skipped):

- ``{"text": "dax the drawer", "task": "drawer-open", "arguments": {"speed": "slow", "repeat": 2}}``
  (a command; ``arguments`` optional, defaults ``normal`` / ``1``);
- ``{"question": "at what point did you open the drawer", "kind": "when", "task": "drawer-open"}`` (a
  new wording of a question; ``kind`` one of ``EVENT_QUESTIONS``, ``task`` for the kinds about one task);
- ``{"input": "...", "output": "..."}`` (a raw text pair).

A malformed line is reported with its line number; the good lines are still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cortico.envs.task_catalog import TASKS
from cortico.language.tasks import EVENT_QUESTIONS, SPEEDS, TASK_QUESTIONS, Example, normalize_question, query_text


@dataclass(frozen=True)
class StreamLineError:
    """A line that could not be read: its number and what is wrong."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def parse_line(row: object) -> Example:
    """One decoded JSON line as a text pair (raises ``ValueError`` naming what is accepted)."""
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    if "text" in row:
        text, task = row.get("text"), row.get("task")
        if not isinstance(text, str) or not text.strip():
            raise ValueError('"text" must be a non-empty string')
        if task not in TASKS:
            raise ValueError(f'"task" must be one of the catalogue tasks (e.g. drawer-open), got {task!r}')
        arguments = row.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise ValueError('"arguments" must be an object like {"speed": "slow", "repeat": 2}')
        speed, repeat = arguments.get("speed", "normal"), arguments.get("repeat", 1)
        if speed not in SPEEDS:
            raise ValueError(f'"speed" must be one of {sorted(SPEEDS)}, got {speed!r}')
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 9:
            raise ValueError(f'"repeat" must be an integer from 1 to 9, got {repeat!r}')
        return Example(text.strip(), f"{task} {speed} {repeat}")
    if "question" in row:
        question, kind, task = row.get("question"), row.get("kind"), row.get("task")
        if not isinstance(question, str) or not normalize_question(question):
            raise ValueError('"question" must be a non-empty string')
        if kind not in EVENT_QUESTIONS:
            raise ValueError(f'"kind" must be one of {", ".join(EVENT_QUESTIONS)}, got {kind!r}')
        if kind in TASK_QUESTIONS and task not in TASKS:
            raise ValueError(f'a {kind!r} question needs "task", one of the catalogue tasks; got {task!r}')
        return Example(normalize_question(question), query_text(kind, task))
    if "input" in row:
        source, target = row.get("input"), row.get("output")
        if not all(isinstance(v, str) and v.strip() for v in (source, target)):
            raise ValueError('"input" and "output" must be non-empty strings')
        return Example(source.strip(), target.strip())
    raise ValueError(
        'expected a command {"text", "task"}, a question {"question", "kind", "task"} or a pair {"input", "output"}'
    )


def read_stream(path: str | Path) -> tuple[list[Example], list[StreamLineError]]:
    """All good lines of ``path`` as examples, and the bad ones' errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stream file {path} does not exist")
    examples, errors = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            examples.append(parse_line(json.loads(line)))
        except json.JSONDecodeError as error:
            errors.append(StreamLineError(number, f"not valid JSON ({error.msg})"))
        except ValueError as error:
            errors.append(StreamLineError(number, str(error)))
    return examples, errors
