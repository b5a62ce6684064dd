"""Training and evaluation end to end: layout, exact resume, the CLI, bad input, offline keyframe errors."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cortico.cli import main
from cortico.envs.contract import KeyframeAction
from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
from cortico.policies import training
from cortico.policies.augmentation import SceneAugmentation
from cortico.policies.base import KeyframePolicy, PolicyConfig
from cortico.policies.offline import keyframe_errors
from cortico.policies.training import TrainConfig, load_policy, train_policy

from .conftest import TINY_VIEW

TINY_RVT = {"coarse": asdict(TINY_VIEW), "fine": asdict(TINY_VIEW)}
TINY_CNN = {"width": 32, "hidden": 64}


def test_run_layout_and_exact_resume(one_episode, tmp_path, monkeypatch):
    config = TrainConfig(policy="cnn", steps=6, batch_size=2, checkpoint_every=3, log_every=1, warmup_steps=1,
                         policy_overrides=TINY_CNN)  # fmt: skip
    train_policy(one_episode, tmp_path / "full", config, progress=False)
    checkpoints = tmp_path / "full" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["000003", "000006", "last"]
    assert (checkpoints / "last").resolve().name == "000006"
    assert (checkpoints / "last" / "pretrained_model" / "model.safetensors").is_file()
    assert list((tmp_path / "full" / "tensorboard").iterdir())
    assert len((tmp_path / "full" / "log.jsonl").read_text().splitlines()) == 6

    save = training.save_training_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_training_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_policy(one_episode, tmp_path / "split", config, progress=False)
    monkeypatch.setattr(training, "save_training_checkpoint", save)
    with pytest.raises(ValueError, match="--resume"):
        train_policy(one_episode, tmp_path / "split", config, progress=False)
    other = dataclasses.replace(config, learning_rate=1e-3)
    with pytest.raises(ValueError, match=r"learning_rate: 0.0005 there, 0.001 here"):
        train_policy(one_episode, tmp_path / "split", other, resume=True, progress=False)
    summary = train_policy(one_episode, tmp_path / "split", config, resume=True, progress=False)
    state = tmp_path / "split" / "checkpoints" / "000003" / "training_state" / "trainer_state.json"
    first_part = json.loads(state.read_text())["metadata"]["train_seconds"]
    assert 0 < first_part < summary["seconds"], "the training time adds up over the resumed parts"
    full = load_file(checkpoints / "last" / "pretrained_model" / "model.safetensors")
    split = load_file(tmp_path / "split" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors")
    assert all((full[k] == split[k]).all() for k in full)
    full_log = (tmp_path / "full" / "log.jsonl").read_text().splitlines()
    split_log = (tmp_path / "split" / "log.jsonl").read_text().splitlines()
    assert full_log == split_log, "the resumed run must follow the same loss curve"


def test_cli_train_and_eval(one_episode, tmp_path, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"train": {"warmup_steps": 1, "checkpoint_every": 2}, "policy": TINY_RVT}))
    code = main(["train", "--policy", "rvt", "--data", str(one_episode), "--out", str(tmp_path / "run"),
                 "--steps", "2", "--batch-size", "2", "--config", str(settings), "--no-augment"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["train"]["augment"] is False and saved["policy"]["augmentation"]["yaw_degrees"] == 0
    policy = load_policy(tmp_path / "run")
    assert policy.config.type == "rvt" and policy.config.tasks == ("drawer-close",)
    code = main(["eval", "--checkpoint", str(tmp_path / "run"), "--tasks", "drawer-close,reach", "--episodes-per-task",
                 "1", "--keyframe-budget", "2", "--json", str(tmp_path / "eval.json"),
                 "--controller", '{"detour_clearance": 0}'])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "| drawer-close |" in out and "not trained on" in out
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["summary"]["episodes"] == 2 and report["tasks"]["reach"]["trained_on_task"] is False
    assert all(e["seed"] >= 1_000_000 for e in report["episodes"])
    assert (tmp_path / "eval.png").stat().st_size > 1000 and (tmp_path / "eval.md").read_text().startswith("## rvt")
    assert report["summary"]["inference_settings"] == {"attention_precision": "float32"}
    assert report["summary"]["controller_settings"] == {"detour_clearance": 0}
    refusals = (
        ("--inference", '{"fine_weight": 1}', "accepted: attention_precision"),
        ("--inference", "[1]", "--inference must be a JSON object"),
        ("--controller", '{"detour": 0}', "controller settings ['detour']; accepted: position_tolerance"),
        ("--controller", "{", "--controller must be a JSON object"),
    )
    for flag, settings, message in refusals:
        code = main(["eval", "--checkpoint", str(tmp_path / "run"), flag, settings])
        assert code == 2 and message in capsys.readouterr().err


def test_evaluation_workers_decide_with_the_policys_inference_settings(tmp_path):
    from cortico.envs.workers import EnvWorker
    from cortico.policies.evaluation import EvaluationJob, evaluate_episode_on_worker, evaluation_seed

    from .conftest import make_policy

    make_policy("cortical").save(tmp_path / "policy")
    worker = EnvWorker()
    try:
        job = EvaluationJob("drawer-close", evaluation_seed(0, 0), first=False)
        result = evaluate_episode_on_worker(worker, tmp_path / "policy", job, 1, None, {"fine_weight": 0.0})
    finally:
        worker.close()
    (loaded,) = [value for key, value in worker.cache.items() if key[0] == "policy"]
    assert loaded.config.fine_weight == 0.0 and result.keyframes == 1


def test_training_refuses_bad_input(one_episode, tmp_path, capsys):
    code = main(["train", "--policy", "diffusion", "--data", str(one_episode), "--out", str(tmp_path / "a")])
    assert code == 2 and "available: ['cnn', 'cortical', 'rvt']" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"train": {"stepz": 3}}')
    code = main(["train", "--policy", "rvt", "--data", str(one_episode), "--out", str(tmp_path / "b"),
                 "--config", str(tmp_path / "bad.json")])  # fmt: skip
    assert code == 2 and "stepz" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"policy": {"num_keypoints": 4}}')
    code = main(["train", "--policy", "rvt", "--data", str(one_episode), "--out", str(tmp_path / "c"),
                 "--config", str(tmp_path / "bad.json"), "--steps", "1"])  # fmt: skip
    assert code == 2 and "RVT policy is the static views" in capsys.readouterr().err
    code = main(["eval", "--checkpoint", str(tmp_path / "missing")])
    assert code == 2 and "no saved policy" in capsys.readouterr().err


class _ExpertPlusOffset(KeyframePolicy):
    """Predicts the expert's own keyframe moved by a fixed offset (to check the offline error metric)."""

    def __init__(self, offset: tuple[float, float, float]) -> None:
        super().__init__(PolicyConfig())
        self.offset = np.asarray(offset)
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def predict(self, batch):
        return [
            KeyframeAction(position=a[:3].double().numpy() + self.offset, quaternion=a[3:7].double().numpy(),
                           gripper_open=bool(a[7] > 0.5), ignore_collision=False)
            for a in batch["action"]
        ]  # fmt: skip


def test_offline_keyframe_errors_measure_the_distance_to_the_expert(one_episode):
    dataset = KeyframeDataset(one_episode, sample_steps="keyframes")
    exact = keyframe_errors(_ExpertPlusOffset((0.0, 0.0, 0.0)), dataset)
    off = keyframe_errors(_ExpertPlusOffset((0.03, 0.0, 0.0)), dataset)
    assert set(exact) == {"drawer-close", "all"} and exact["all"]["samples"] == len(dataset)
    assert exact["all"]["median_cm"] < 1e-3 and exact["all"]["within_2cm"] == 1.0
    assert abs(off["all"]["median_cm"] - 3.0) < 1e-3
    assert off["all"]["within_2cm"] == 0.0 and off["all"]["within_5cm"] == 1.0 and off["all"]["gripper_agreement"] == 1


def test_training_without_augmentation_turns_off_each_policys_own(one_episode):
    dataset = KeyframeDataset(one_episode)
    for kind, field, off in (("rvt", "augmentation", SceneAugmentation.none()), ("cnn", "shift_pixels", 0)):
        on = training.policy_config(TrainConfig(policy=kind), dataset)
        assert getattr(on, field) != off, f"{kind} augments by default"
        assert getattr(training.policy_config(TrainConfig(policy=kind, augment=False), dataset), field) == off
    bounds = training.policy_config(TrainConfig(), dataset).bounds
    actions = torch.zeros(4, 9)
    actions[:, :3] = torch.as_tensor(bounds.center, dtype=torch.float32)
    rotation, translation = SceneAugmentation.none().sample(actions, bounds, torch.Generator().manual_seed(0))
    assert torch.equal(rotation, torch.eye(3).repeat(4, 1, 1)) and not translation.any()
    rotation, _ = SceneAugmentation().sample(actions, bounds, torch.Generator().manual_seed(0))
    assert not torch.allclose(rotation, torch.eye(3).repeat(4, 1, 1)), "the default augmentation moves the scene"


def test_a_setting_added_later_keeps_its_earlier_value_for_older_checkpoints(one_episode, tmp_path):
    dataset = KeyframeDataset(one_episode)
    train = TrainConfig(policy="cnn", policy_overrides=TINY_CNN)
    assert training.policy_config(train, dataset).collision_probe, "today's default"
    checkpoint = tmp_path / "checkpoints" / "last"
    training.build_policy(train, dataset, None).save(checkpoint / "pretrained_model")
    config_file = checkpoint / "pretrained_model" / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["collision_probe"]  # as written before the setting existed
    config_file.write_text(json.dumps(saved))
    assert not load_policy(checkpoint).config.collision_probe
    assert not training.policy_config(train, dataset, resumed=checkpoint).collision_probe, "a resumed run keeps it"
    forced = dataclasses.replace(train, policy_overrides={**TINY_CNN, "collision_probe": True})
    assert training.policy_config(forced, dataset, resumed=checkpoint).collision_probe, "an explicit setting wins"
