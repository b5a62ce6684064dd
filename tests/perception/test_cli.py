"""Perception commands end to end."""

from __future__ import annotations

import json

from cortico.cli import main


def test_train_eval_and_show(capsys, mt10_small, tmp_path):
    run = tmp_path / "gaze"
    code = main(["perception", "train-gaze", "--data", str(mt10_small), "--out", str(run), "--steps", "20",
                 "--batch-size", "8", "--frame-stride", "4", "--width", "8", "--no-text"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "centre_baseline" in out and (run / "model" / "config.json").is_file()
    code = main(["perception", "eval-gaze", "--model", str(run / "model"), "--data", str(mt10_small),
                 "--json", str(tmp_path / "report.json")])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["samples"] > 0 and "hit_rate_within_6px" in report["model"]
    code = main(["perception", "show", str(mt10_small), "--sample", "2", "--out", str(tmp_path / "views.png")])
    assert code == 0 and (tmp_path / "views.png").stat().st_size > 500
    code = main(["perception", "show", str(mt10_small), "--out", str(tmp_path / "bad.png"),
                 "--workspace-high", "0.5", "0.2", "0.55"])  # fmt: skip
    assert code == 2 and "min < max" in capsys.readouterr().err and not (tmp_path / "bad.png").exists()
    code = main(["perception", "train-gaze", "--data", str(mt10_small), "--out", str(run), "--steps", "20"])
    assert code == 2 and "--resume" in capsys.readouterr().err
    code = main(["perception", "eval-gaze", "--model", str(tmp_path / "nope"), "--data", str(mt10_small)])
    assert code == 2 and "gaze model" in capsys.readouterr().err
