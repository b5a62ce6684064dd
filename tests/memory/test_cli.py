"""Memory commands: bad settings are refused before any work starts."""

from __future__ import annotations

import json

import pytest

from cortico.cli import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget", "2"], "budgets must be token counts >= 4"),
        (["--encoder-steps", "0"], "--encoder-steps must be >= 1"),
        (["--reader-steps", "-5"], "--reader-steps must be >= 1"),
        (["--readers", "0"], "--readers must be >= 1"),
        (["--encoder-scenes", "-1"], "--encoder-scenes must be >= 0"),
        (["--pointer-loss-weight", "-0.1"], "--pointer-loss-weight must be >= 0"),
        (["--reader-attention-dropout", "1"], "--reader-attention-dropout must be in [0, 1)"),
        (["--policies", "cortico,nope"], "nope"),
        (["--heldout-streams", "-1"], "--heldout-streams must be >= 0"),
    ],
)
def test_memory_bench_refuses_bad_settings(capsys, tmp_path, flags, message):
    code = main(["memory", "bench", "--data", str(tmp_path / "missing"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err


def test_memory_bench_names_demos_of_an_older_revision_instead_of_mixing_them(capsys, tmp_path, monkeypatch):
    from cortico.envs.dataset.collect import CollectionConfig
    from cortico.envs.dataset.index import DatasetIndex

    monkeypatch.chdir(tmp_path)
    signature = CollectionConfig(episodes_per_task=12, cameras=("front",), image_size=64).signature()
    signature["expert_revision"] -= 1
    DatasetIndex(collection={"signature": signature, "seed": 0}).save(tmp_path / "runs/memory/demos")
    assert main(["memory", "bench"]) == 2
    error = capsys.readouterr().err
    assert "runs/memory/demos holds demos collected with" in error and "delete that folder" in error


def test_memory_bench_refuses_heldout_demos_that_share_episodes_before_training(
    capsys, tmp_path, monkeypatch, mt10_small
):
    monkeypatch.chdir(tmp_path)
    flags = ["--data", str(mt10_small), "--heldout-streams", "1", "--heldout-data", str(mt10_small)]
    assert main(["memory", "bench", *flags]) == 2
    assert "share 20 episodes (task, seed) with the training demos" in capsys.readouterr().err
    assert not list(tmp_path.glob("runs/memory/bench/*/encoder"))  # nothing was trained


def test_qa_build_then_eval_scores_a_question_set(capsys, tmp_path, mt10_small):
    from cortico.memory.qa import load_questions

    sets = {}
    for flag in ("--no-older-tasks", "--older-tasks"):
        out = tmp_path / f"{flag.strip('-')}.jsonl"
        flags = ["--streams", "2", "--episodes-per-stream", "5", "--questions-per-stream", "30", flag]
        assert main(["qa", "build", "--data", str(mt10_small), *flags, "--out", str(out)]) == 0
        assert out.with_suffix(".streams.json").is_file()
        sets[flag] = load_questions(out)
    templates = {flag: {q.template for q in questions} for flag, questions in sets.items()}
    assert templates["--older-tasks"] - templates["--no-older-tasks"] <= {
        "object_region_start_k_ago", "gripper_region_close_k_ago"
    }  # fmt: skip
    assert templates["--older-tasks"] & {"object_region_start_k_ago", "gripper_region_close_k_ago"}

    questions = sets["--older-tasks"]
    answers = tmp_path / "answers.jsonl"  # the first half answered right, the rest wrong, one left out
    lines = [
        {"id": q.id, "choice": q.answer if i < len(questions) // 2 else (q.answer + 1) % 4}
        for i, q in enumerate(questions)
    ]
    answers.write_text("\n".join(json.dumps(line) for line in lines[:-1]))
    capsys.readouterr()
    assert main(["qa", "eval", "--questions", str(tmp_path / "older-tasks.jsonl"), "--answers", str(answers)]) == 0
    assert f"overall                  {len(questions) // 2}/{len(questions)} = " in capsys.readouterr().out

    answers.write_text('{"id": "nope", "choice": 1}')
    assert main(["qa", "eval", "--questions", str(tmp_path / "older-tasks.jsonl"), "--answers", str(answers)]) == 2
    assert "answers for unknown questions" in capsys.readouterr().err
