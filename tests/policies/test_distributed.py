"""Ray: data-parallel training equals one process on the same global batch; evaluation on env workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cortico.policies.evaluation import evaluate_policy
from cortico.policies.training import TrainConfig, load_policy, train_policy
from cortico.ray_runtime import RayOptions

DETERMINISTIC_CNN = {"width": 32, "hidden": 64, "shift_pixels": 0}  # no augmentation: one loss per batch
HALF_CPU = RayOptions(cpus_per_worker=1.0)
pytestmark = pytest.mark.usefixtures("local_ray")  # one Ray for the whole session


def losses(run: Path) -> list[float]:
    return [json.loads(line)["total"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ray_train_workers_resume_a_run_and_take_the_steps_of_one_process(one_episode: Path, tmp_path: Path) -> None:
    """One Ray Train start (each costs ~35 s here): a run begun in one process continues on two workers."""
    from cortico.policies.distributed import train_policy_distributed

    torch.set_num_threads(1)
    config = TrainConfig(policy="cnn", steps=4, batch_size=4, checkpoint_every=1, log_every=1, warmup_steps=1,
                         learning_rate=1e-3, policy_overrides=DETERMINISTIC_CNN)  # fmt: skip
    train_policy(one_episode, tmp_path / "one", config, progress=False)
    shorter = TrainConfig(**{**config.__dict__, "steps": 2})
    train_policy(one_episode, tmp_path / "two", shorter, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train_policy_distributed(one_episode, tmp_path / "two", config, workers=2, ray=HALF_CPU)
    summary = train_policy_distributed(one_episode, tmp_path / "two", config, workers=2, ray=HALF_CPU, resume=True)
    assert summary["steps"] == 4 and summary["workers"] == 2 and summary["samples_per_second"] > 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4], "the resumed run trains only the missing steps"
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), rel=1e-5)
    one = load_file(tmp_path / "one" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors")
    two = load_file(tmp_path / "two" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors")
    close = [torch.isclose(one[k], two[k], rtol=1e-4, atol=1e-6).float().mean() for k in one]
    assert min(close) > 0.999, "the averaged-gradient update is the single-process update"
    assert load_policy(tmp_path / "two").config.type == "cnn"
    assert (tmp_path / "two" / "checkpoints" / "last").resolve().name == "000004"


@pytest.mark.slow
def test_evaluation_on_workers_matches_in_process(one_episode: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = TrainConfig(policy="cnn", steps=1, batch_size=2, warmup_steps=1, policy_overrides=DETERMINISTIC_CNN)
    train_policy(one_episode, tmp_path / "run", config, progress=False)
    policy = load_policy(tmp_path / "run").eval()
    tasks = ["drawer-close", "reach"]
    here = evaluate_policy(policy, tasks, 2, keyframe_budget=2, progress=False)
    log = tmp_path / "episodes.jsonl"
    there = evaluate_policy(policy, tasks, 2, keyframe_budget=2, progress=False, workers=2,
                            checkpoint=tmp_path / "run", ray=HALF_CPU, episodes_file=log)  # fmt: skip
    strip = lambda report: [(e.task, e.seed, e.success, e.keyframes, e.stop_reason) for e in report.episodes]  # noqa: E731
    assert strip(here) == strip(there) and len(there.episodes) == 4
    assert len(log.read_text().splitlines()) == 4 and len(there.workers) == 2
    again = evaluate_policy(policy, tasks, 2, keyframe_budget=2, progress=False, episodes_file=log)
    assert strip(again) == strip(here), "a resumed evaluation reuses the finished episodes"
    assert all(len(e.actions) == e.keyframes and len(e.actions[0]) == 5 for e in there.episodes)
    assert [e.actions for e in again.episodes] == [e.actions for e in there.episodes], "chosen keyframes are kept"
    with pytest.raises(ValueError, match="checkpoint"):
        evaluate_policy(policy, tasks, 1, workers=2)
