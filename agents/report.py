"""The demo's HTML report: success tables, training curves, the rollout, memory occupancy, questions and answers."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from cortico.atomic import atomic_path

SECTIONS = ("Success", "Training curves", "Rollout", "Memory occupancy", "Questions and answers")


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot on the headless backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(figure: Any, path: Path) -> Path:
    """Write a figure as PNG atomically and free it."""
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    _pyplot().close(figure)
    return path


def _plot_training(log: Path, path: Path) -> Path | None:
    """Training losses against steps (PNG), from the run's ``log.jsonl``."""
    plt = _pyplot()
    if not log.is_file():
        return None
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(7, 3.5))
    steps = [r["step"] for r in rows]
    for key in [k for k in rows[-1] if k != "step"]:
        axis.plot(steps, [r.get(key) for r in rows], label=key, linewidth=2 if key == "total" else 1)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_yscale("log")
    axis.legend(fontsize=7, ncol=2)
    axis.set_title("cortical policy training")
    return _save_png(figure, path)


def _plot_memory(trace: list[dict[str, Any]], path: Path) -> Path | None:
    """Cumulative clear / fuzzy / discarded frames and tokens held against the budget (PNG)."""
    plt = _pyplot()
    if not trace:
        return None
    times = [t["time"] for t in trace]
    figure, (counts, tokens) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, colour in (("clear", "tab:green"), ("fuzzy", "tab:orange"), ("discarded", "tab:grey")):
        counts.plot(times, [t[key] for t in trace], label=key, color=colour)
    counts.set_xlabel("session time (s)")
    counts.set_ylabel("frames (cumulative)")
    counts.legend(fontsize=8)
    counts.set_title("what happened to each frame")
    tokens.plot(times, [t["tokens"] for t in trace], label="tokens held")
    tokens.axhline(trace[-1]["budget"], color="tab:red", linestyle="--", label="budget")
    tokens.plot(times, [t["notes"] for t in trace], label="long-term notes")
    tokens.set_xlabel("session time (s)")
    tokens.legend(fontsize=8)
    tokens.set_title("memory occupancy")
    return _save_png(figure, path)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, float) for v in value):
        return "-".join(f"{v:.1f}" for v in value)
    return "" if value is None else str(value)


def _image(path: Path | None, out: Path, alt: str) -> str:
    if path is None:
        return f"<p><em>no {html.escape(alt)}</em></p>"
    return f'<img src="{html.escape(os.path.relpath(path, out))}" alt="{html.escape(alt)}">'


def write_report(
    out: Path, config: Any, evaluation: dict[str, Any], session: dict[str, Any], timings: dict[str, float]
) -> Path:
    """Write ``out/report.html`` (and its PNGs) atomically; returns its path."""
    curves = _plot_training(out / "policy" / "log.jsonl", out / "training_curves.png")
    occupancy = _plot_memory(session["memory_trace"], out / "memory_occupancy.png")
    per_task = evaluation["per_task"]
    success_rows = [
        [task, row["success_rate"], row["wilson95"], row["mean_keyframes"]] for task, row in per_task.items()
    ]
    agent_rows = [[r["command"], r["task"], r["confidence"], r["parser"], r["status"], r["keyframes"],
                   r["seconds"], r["stop_reason"]] for r in session["results"]]  # fmt: skip
    answer_rows = [[a["asked_at"], a["during"] or "(after the session)", a["question"], a["query"], a["text"],
                    a["truth"], "yes" if a["correct"] else "no", a["confidence"], a["evidence_span"]]
                   for a in session["answers"]]  # fmt: skip
    summary = session["summary"]
    questions = summary["questions"]
    accuracy = "n/a" if questions["accuracy"] is None else f"{questions['accuracy']:.0%}"
    stage_rows = [[name, seconds] for name, seconds in timings.items()]
    sections = {
        "Success": "<h3>Evaluation on held-out seeds</h3>"
        + _table(["task", "success rate", "Wilson 95%", "mean keyframes"], success_rows)
        + f"<p>mean success {evaluation['summary']['mean_success']:.2f} over "
        f"{evaluation['summary']['episodes']} episodes</p>"
        + "<h3>The agent's commands</h3>"
        + _table(
            ["command", "parsed task", "confidence", "parser", "status", "keyframes", "seconds", "why it stopped"],
            agent_rows,
        )  # fmt: skip
        + f"<p>An empty command: <em>{html.escape(summary['empty_command'])}</em></p>",
        "Training curves": _image(curves, out, "training curves"),
        "Rollout": "<p>Every camera side by side; the red ring on the wrist view is the gaze model's fixation.</p>"
        + _image(Path(session["video"]) if session["video"] else None, out, "rollout video"),
        "Memory occupancy": _image(occupancy, out, "memory occupancy")
        + f"<p>{summary['frames_remembered']} frames remembered; final memory state: "
        f"{html.escape(json.dumps(summary['memory']))}</p>",
        "Questions and answers": f"<p>{questions['questions']} questions, exact-match accuracy {accuracy}; "
        "asked from another thread while the agent acted, then about the whole session.</p>"
        + _table(
            [
                "asked at (s)",
                "during",
                "question",
                "read as",
                "answer",
                "truth",
                "correct",
                "confidence",
                "evidence span (s)",
            ],
            answer_rows,
        ),  # fmt: skip
    }
    body = "".join(f"<h2>{name}</h2>{sections[name]}" for name in SECTIONS)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cortico demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}img{{max-width:100%}}</style></head>
<body><h1>cortico demo</h1>
<p>Tasks: {html.escape(", ".join(config.tasks))}. Stage times (s):</p>{_table(["stage", "seconds"], stage_rows)}
{body}</body></html>
"""
    path = out / "report.html"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page)
    return path
