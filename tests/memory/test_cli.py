"""Memory commands: bad settings are refused before any work starts."""

from __future__ import annotations

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
        (["--policies", "cortico,nope"], "nope"),
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
