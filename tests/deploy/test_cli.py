"""Deploy commands: a dry run against the simulated arm, calibration from correspondences, bad input."""

from __future__ import annotations

import json

import numpy as np

from cortico.cli import main
from cortico.deploy.calibration import load_calibration


def test_deploy_run_with_the_expert_and_a_dry_run(sim_arm, tmp_path, capsys):
    sim_arm("button-press-topdown", seed=0)
    code = main(["deploy", "run", "press the button from above", "--profile", "sim_sawyer", "--expert",
                 "button-press-topdown", "--audit", str(tmp_path / "audit.jsonl")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "task succeeded" in out
    code = main(["deploy", "run", "press the button", "--profile", "sim_sawyer", "--expert", "button-press-topdown",
                 "--dry-run", "--max-keyframes", "2", "--audit", str(tmp_path / "dry.jsonl")])  # fmt: skip
    assert code == 0 and "dry run: would stream" in capsys.readouterr().out


def test_calibrate_command(tmp_path, capsys):
    rng = np.random.default_rng(1)
    camera = rng.uniform(-0.2, 0.2, (6, 3)) + [0, 0, 0.8]
    base = camera + [0.1, 0.5, 0.0]
    (tmp_path / "cam.json").write_text(json.dumps(camera.tolist()))
    (tmp_path / "robot.json").write_text(json.dumps(base.tolist()))
    out = tmp_path / "calibration.yaml"
    code = main(["deploy", "calibrate", "--camera", "front", "--camera-points", str(tmp_path / "cam.json"),
                 "--robot-points", str(tmp_path / "robot.json"), "--out", str(out)])  # fmt: skip
    assert code == 0 and "rms residual 0.0 mm" in capsys.readouterr().out
    np.testing.assert_allclose(load_calibration(out)["front"].matrix[:3, 3], [0.1, 0.5, 0.0], atol=1e-9)
    (tmp_path / "line.json").write_text(json.dumps([[0, 0, 0], [1, 0, 0], [2, 0, 0]]))
    code = main(["deploy", "calibrate", "--camera", "front", "--camera-points", str(tmp_path / "line.json"),
                 "--robot-points", str(tmp_path / "line.json"), "--out", str(out)])  # fmt: skip
    assert code == 2 and "collinear" in capsys.readouterr().err


def test_bad_deploy_input(capsys):
    assert main(["deploy", "run", "  ", "--profile", "sim_sawyer", "--expert", "reach"]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["deploy", "run", "open", "--profile", "franka", "--expert", "reach"]) == 2
    assert "only drives the simulated arm" in capsys.readouterr().err
