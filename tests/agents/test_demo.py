"""``cortico demo --fast``: every stage runs for real (Ray collection, training, evaluation, agent) and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortico.agents.demo import DemoConfig, run_demo
from cortico.agents.report import SECTIONS


def test_fast_demo_writes_a_report_with_every_section_and_resumes(tmp_path: Path) -> None:
    from cortico.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html, section
    for name in ("training_curves.png", "memory_occupancy.png", "rollout.gif", "session.json", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert 'src="rollout.gif"' in html and 'src="training_curves.png"' in html
    session = json.loads((out / "session.json").read_text())
    commands = DemoConfig.fast().session_commands()
    assert [r["command"] for r in session["results"]] == commands
    assert session["answers"], "questions were asked"
    assert all({"question", "query", "text", "truth", "correct", "evidence_span"} <= set(a) for a in session["answers"])
    assert "<th>read as</th>" in html and session["answers"][0]["query"] in html
    assert session["summary"]["memory"]["tokens"] <= DemoConfig.fast().memory_budget
    # index.json of the demos and the checkpoints are reused: a second run only redoes the agent and the report
    again = run_demo(out, DemoConfig.fast())
    assert again.html == out / "report.html"
    assert again.summary["seconds"]["train the cortical policy (10 steps, gaze model 10 steps)"] < 30
    with pytest.raises(ValueError, match=r"other settings \(.*episodes_per_task: \d+ there, 3 here"):
        run_demo(out, DemoConfig(episodes_per_task=3))
