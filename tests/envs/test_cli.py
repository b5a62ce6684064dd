"""The command line: every verb end to end on the real simulator, and clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cortico.cli import main
from cortico.envs.dataset.index import DatasetIndex


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "argv",
    [[], ["envs", "list"], ["collect"], ["dataset", "info"], ["dataset", "check"], ["view"], ["demo"]],
)
def test_every_command_has_help(argv):
    result = subprocess.run(
        [sys.executable, "-m", "cortico.cli", *argv, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage: cortico" in result.stdout


def test_envs_list(capsys):
    code, out, _ = run(capsys, "envs", "list", "--suite", "mt10", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 10
    assert all(len(r["instructions"]) >= 4 and "mt10" in r["suites"] for r in rows)
    code, out, _ = run(capsys, "envs", "list")
    assert code == 0 and "50 tasks" in out


def test_collect_info_check_view(capsys, tmp_path):
    out_dir = tmp_path / "demos"
    small = ["--episodes-per-task", "1", "--out", str(out_dir), "--image-size", "32", "--cameras", "front,wrist",
             "--store", "keyframes"]  # fmt: skip
    code, out, err = run(capsys, "collect", "--tasks", "reach,button-press", *small, "--json", str(tmp_path / "s.json"))
    assert code == 0, err
    assert "collected 2 new episodes" in out
    assert json.loads((tmp_path / "s.json").read_text())["collected"] == {"reach": 1, "button-press": 1}

    code, out, _ = run(capsys, "dataset", "info", str(out_dir), "--json")
    info = json.loads(out)
    assert code == 0 and info["episodes"] == 2 and set(info["tasks"]) == {"reach", "button-press"}
    assert info["collection"]["signature"]["store"] == "keyframes"
    code, out, _ = run(capsys, "dataset", "info", str(out_dir))
    assert code == 0 and "button-press" in out

    code, out, _ = run(capsys, "dataset", "check", str(out_dir))
    assert code == 0 and "OK" in out

    for name in ("sheet.png", "clip.mp4", "clip.gif"):
        code, out, err = run(capsys, "view", str(out_dir), "--episode", "1", "--out", str(tmp_path / name))
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"

    # running the same collection again without --resume is refused and loses nothing
    code, _, err = run(capsys, "collect", "--tasks", "reach", *small)
    assert code == 2 and "--resume" in err
    assert len(DatasetIndex.load(out_dir).episodes) == 2


def test_check_exits_non_zero_on_a_bad_dataset(capsys, dataset_copy):
    first = DatasetIndex.load(dataset_copy).episodes[0]
    path = dataset_copy / first.file
    path.write_bytes(path.read_bytes()[:1000])
    code, out, _ = run(capsys, "dataset", "check", str(dataset_copy), "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert report["problems"][0]["file"] == first.file


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["collect", "--tasks", "drawer-opne", "--episodes-per-task", "1", "--out", "x"], "available tasks: assembly"),
        (["collect", "--suite", "mt11", "--episodes-per-task", "1", "--out", "x"], "available suites: mt10"),
        (["collect", "--tasks", "reach", "--episodes-per-task", "1", "--out", "x", "--image-size", "9"], "32..1024"),
        (["collect", "--tasks", "reach", "--episodes-per-task", "1", "--out", "x", "--cameras", "top"], "front"),
        (["collect", "--tasks", "reach", "--episodes-per-task", "0", "--out", "x"], ">= 1"),
        (["dataset", "info", "nowhere"], "index.json is missing"),
        (["envs", "list", "--suite", "mt11"], "available suites"),
    ],
)
def test_bad_input_gets_a_clear_error(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists(), "a refused collection must not create its output"


def test_view_rejects_bad_episode_and_suffix(capsys, tiny_dataset, tmp_path):
    code, _, err = run(capsys, "view", str(tiny_dataset), "--episode", "5", "--out", str(tmp_path / "a.png"))
    assert code == 2 and "episodes 0..1" in err
    code, _, err = run(capsys, "view", str(tiny_dataset), "--out", str(tmp_path / "a.avi"))
    assert code == 2 and ".mp4" in err
