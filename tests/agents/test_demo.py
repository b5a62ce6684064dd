"""The main job (placeholder until the agent issue): demos, a contact sheet and a video."""

from __future__ import annotations

from cortico.cli import main
from cortico.envs.cameras import DEFAULT_CAMERAS
from cortico.envs.dataset.index import DatasetIndex


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_writes_a_contact_sheet_and_a_video(capsys, tmp_path):
    code, out, err = run(
        capsys, "demo", "--out", str(tmp_path / "demo"), "--episodes-per-task", "1", "--image-size", "48", "--gif"
    )
    assert code == 0, err
    assert (tmp_path / "demo" / "contact_sheet.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "episode.gif").stat().st_size > 1000
    assert "contact sheet" in out
    index = DatasetIndex.load(tmp_path / "demo" / "dataset")
    assert index.collection["signature"]["cameras"] == list(DEFAULT_CAMERAS)
    # a second run reuses the collected episodes
    code, _, err = run(
        capsys, "demo", "--out", str(tmp_path / "demo"), "--episodes-per-task", "1", "--image-size", "48", "--gif"
    )
    assert code == 0, err
    assert len(DatasetIndex.load(tmp_path / "demo" / "dataset").episodes) == 2
