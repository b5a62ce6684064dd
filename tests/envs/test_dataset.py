"""The demonstration dataset: round trip, atomic writes, validation, resume, and keyframe samples."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from cortico.envs.camera_geometry import depth_to_points
from cortico.envs.dataset.check import check_dataset
from cortico.envs.dataset.collect import CollectionConfig, collect_demos, collect_into_cache
from cortico.envs.dataset.episode_file import CorruptEpisodeError, read_episode, validate_episode, write_episode
from cortico.envs.dataset.index import INDEX_NAME, DatasetError, DatasetIndex
from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
from cortico.envs.expert_demos import EXPERT_REVISION

from ..conftest import TINY_CAMERAS, TINY_IMAGE_SIZE, TINY_TASKS


def test_collected_dataset_is_complete_and_valid(tiny_dataset):
    index = DatasetIndex.load(tiny_dataset)
    assert sorted(e.task for e in index.episodes) == sorted(TINY_TASKS)
    assert index.collection["signature"]["cameras"] == list(TINY_CAMERAS)
    assert index.software["metaworld"] != "not installed"
    for entry in index.episodes:
        assert entry.keyframes and entry.keyframes[-1] == entry.length - 1
        assert entry.num_frames == entry.length  # store="all"
    report = check_dataset(tiny_dataset)
    assert report.ok, report.problems
    assert report.episodes_ok == len(TINY_TASKS)


def test_episode_round_trip(tiny_dataset, tmp_path):
    entry = DatasetIndex.load(tiny_dataset).episodes[0]
    record = read_episode(tiny_dataset / entry.file)
    assert record.success and record.task == entry.task and record.seed == entry.seed
    assert record.cameras["front"].rgb.shape == (entry.num_frames, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
    copy = tmp_path / "again.h5"
    write_episode(copy, record)
    again = read_episode(copy)
    for name in ("gripper_pose", "gripper_open", "joint_positions", "state", "actions", "frame_steps"):
        np.testing.assert_array_equal(getattr(record, name), getattr(again, name))
    for camera in record.cameras:
        for key in ("rgb", "depth", "intrinsics", "extrinsics"):
            np.testing.assert_array_equal(getattr(record.cameras[camera], key), getattr(again.cameras[camera], key))
    assert again.keyframes == record.keyframes and again.instruction == record.instruction
    np.testing.assert_array_equal(again.hand_contact, record.hand_contact)
    assert len(record.hand_contact) == record.num_steps and record.hand_contact.any()


def test_keyframes_reached_through_contact_are_labelled_ignore_collision(tiny_dataset, tmp_path):
    """Drawer-open: the approach to the handle touches nothing; the pull moves it through contact."""
    entry = next(e for e in DatasetIndex.load(tiny_dataset).episodes if e.task == "drawer-open")
    with h5py.File(tiny_dataset / entry.file, "r") as f:
        labels = f["keyframe_actions"][:, 8]
    assert labels[0] == 0 and labels[-1] == 1
    # A file written before contacts were recorded reads with none, and every move then avoids collisions.
    older = tmp_path / "older.h5"
    shutil.copy(tiny_dataset / entry.file, older)
    with h5py.File(older, "a") as f:
        del f["steps/hand_contact"]
    record = read_episode(older)
    assert len(record.hand_contact) == 0
    assert not any(action.ignore_collision for action in record.keyframe_actions())


def test_keyframe_samples_pair_an_observation_with_the_next_keyframe(tiny_dataset):
    dataset = KeyframeDataset(tiny_dataset)
    index = DatasetIndex.load(tiny_dataset)
    assert len(dataset) == sum(len(e.keyframes) for e in index.episodes)  # step 0 + all keyframes but the last
    record = read_episode(tiny_dataset / dataset.episodes[0].file)
    first, second = dataset[0], dataset[1]
    assert first["step"] == 0 and first["target_step"] == record.keyframes[0]
    assert second["step"] == record.keyframes[0] and second["target_step"] == record.keyframes[1]
    expected = record.keyframe_actions()[0].to_array()
    np.testing.assert_allclose(first["action"].numpy(), expected, atol=1e-6)
    assert first["rgb"].shape == (len(TINY_CAMERAS), TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
    depth = first["depth"][0].numpy()
    frame = record.cameras[TINY_CAMERAS[0]]
    points = depth_to_points(depth, frame.intrinsics[0], frame.extrinsics[0])
    np.testing.assert_allclose(first["points"][0].numpy(), points, atol=1e-6)
    assert first["instruction"] == record.instruction
    dense = KeyframeDataset(tiny_dataset, sample_steps="all", cameras=["wrist"], tasks=["pick-place"])
    assert len(dense) == dense.episodes[0].keyframes[-1]
    assert dense[0]["rgb"].shape[0] == 1


def test_the_memory_cache_returns_what_the_files_hold_within_its_budget(tiny_dataset):
    plain = KeyframeDataset(tiny_dataset, sample_steps="all")
    one_sample_mb = sum(v.nbytes for v in plain[0].values() if isinstance(v, torch.Tensor)) / 2**20
    cached = KeyframeDataset(tiny_dataset, sample_steps="all", cache_mb=2.5 * one_sample_mb)
    for _ in range(2):  # the first pass fills the cache, the second reads from it
        for index in range(len(plain)):
            expected, got = plain[index], cached[index]
            assert expected.keys() == got.keys()
            for key, value in expected.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, got[key]), key
                else:
                    assert value == got[key], key
    assert cached.cached_samples == 2, "two samples fit in 2.5 samples' worth of memory"
    changed = cached[0]
    changed["rgb"].zero_()
    assert torch.equal(cached[0]["rgb"], plain[0]["rgb"]), "changing a returned sample must not change the cache"
    assert KeyframeDataset(tiny_dataset).cached_samples == 0
    with pytest.raises(ValueError, match="cache_mb must be >= 0"):
        KeyframeDataset(tiny_dataset, cache_mb=-1)


def test_task_balanced_draws_give_every_task_the_same_share(tiny_dataset):
    from cortico.policies.training import TrainConfig, draw_batch

    dataset = KeyframeDataset(tiny_dataset, sample_steps="all")  # episodes of different lengths
    tasks = np.array([dataset.episodes[ref.episode].task for ref in dataset.samples])
    assert (tasks == "drawer-open").sum() != (tasks == "pick-place").sum()  # else the test shows nothing
    weights = dataset.task_balanced_weights()
    assert weights.sum() == pytest.approx(1.0)
    assert weights[tasks == "drawer-open"].sum() == pytest.approx(0.5)
    generator = torch.Generator().manual_seed(0)
    balanced = draw_batch(dataset, TrainConfig(batch_size=4000, balance_tasks=True), generator)
    assert np.mean(tasks[balanced] == "drawer-open") == pytest.approx(0.5, abs=0.03)
    uniform = draw_batch(dataset, TrainConfig(batch_size=4000), generator)
    share = np.mean(tasks == "drawer-open")
    assert np.mean(tasks[uniform] == "drawer-open") == pytest.approx(share, abs=0.03)


def test_loader_batches_with_torch(tiny_dataset):
    from torch.utils.data import DataLoader

    batch = next(iter(DataLoader(KeyframeDataset(tiny_dataset), batch_size=3, shuffle=True)))
    assert batch["rgb"].shape[0] == 3 and batch["action"].shape == (3, 9)
    assert len(batch["instruction"]) == 3


def test_loader_rejects_unknown_cameras_and_tasks(tiny_dataset):
    with pytest.raises(DatasetError, match="not in this dataset"):
        KeyframeDataset(tiny_dataset, cameras=["overhead"])
    with pytest.raises(DatasetError, match="no episodes of tasks"):
        KeyframeDataset(tiny_dataset, tasks=["reach"])


def test_dataset_without_keyframes_is_refused(dataset_copy):
    index = DatasetIndex.load(dataset_copy)
    index.episodes = []
    index.save(dataset_copy)
    with pytest.raises(DatasetError, match="no keyframe samples"):
        KeyframeDataset(dataset_copy)


def test_check_finds_truncated_corrupt_missing_and_unlisted_files(dataset_copy):
    index = DatasetIndex.load(dataset_copy)
    truncated, corrupt = (dataset_copy / e.file for e in index.episodes)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptEpisodeError):
        validate_episode(truncated)
    raw = bytearray(corrupt.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    corrupt.write_bytes(bytes(raw))
    stray = dataset_copy / "episodes" / "reach" / "seed_0000005.h5"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not an episode")
    (dataset_copy / "episodes" / ".seed_1.h5.abc.tmp").write_bytes(b"partial")
    report = check_dataset(dataset_copy)
    reasons = {p.file: p.reason for p in report.problems}
    assert not report.ok and report.episodes_ok == 0
    assert "truncated" in reasons[index.episodes[0].file]
    assert "SHA-256" in reasons[index.episodes[1].file]
    assert "not listed" in reasons["episodes/reach/seed_0000005.h5"]
    assert any("partial file" in r for r in reasons.values())
    # without checksums the corrupt chunk is still found by reading every array
    assert not check_dataset(dataset_copy, checksums=False).ok


def test_check_reports_an_index_that_disagrees_with_the_files(dataset_copy):
    index = DatasetIndex.load(dataset_copy)
    index.episodes[0].keyframes = [1, 2]
    os.remove(dataset_copy / index.episodes[1].file)
    index.save(dataset_copy)
    reasons = [p.reason for p in check_dataset(dataset_copy).problems]
    assert any("differ from the index" in r for r in reasons)
    assert any("missing on disk" in r for r in reasons)


def test_malformed_index_is_a_clear_error(dataset_copy):
    (dataset_copy / "index.json").write_text("{not json")
    with pytest.raises(DatasetError, match="malformed"):
        DatasetIndex.load(dataset_copy)
    report = check_dataset(dataset_copy)
    assert not report.ok and report.problems[0].file == "index.json"
    with pytest.raises(DatasetError, match="index.json is missing"):
        DatasetIndex.load(dataset_copy / "episodes")


_SLOW_WRITER = """
import sys, numpy as np
from cortico.envs.dataset.episode_file import read_episode, write_episode
record = read_episode(sys.argv[1])
rng = np.random.default_rng(0)
frames = 600
for seq in record.cameras.values():
    seq.rgb = rng.integers(0, 255, size=(frames, 128, 128, 3), dtype=np.uint8)
    seq.depth = rng.random((frames, 128, 128), dtype=np.float32)
    seq.intrinsics = np.repeat(seq.intrinsics[:1], frames, 0)
    seq.extrinsics = np.repeat(seq.extrinsics[:1], frames, 0)
record.frame_steps = np.zeros(frames, dtype=np.int64)
print("writing", flush=True)
write_episode(sys.argv[2], record, compression=9)
"""


def test_a_killed_writer_leaves_no_loadable_partial_episode(dataset_copy):
    index = DatasetIndex.load(dataset_copy)
    source = dataset_copy / index.episodes[0].file
    target = dataset_copy / "episodes" / "drawer-open" / "seed_0000099.h5"
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(source), str(target)], stdout=subprocess.PIPE)
    assert writer.stdout.readline().strip() == b"writing"
    deadline = time.monotonic() + 60
    while not list(target.parent.glob("*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert not target.exists(), "the target must only appear once complete"
    partials = list(target.parent.glob("*.tmp"))
    assert partials, "the killed writer should have left its temporary file"
    report = check_dataset(dataset_copy)
    assert [p.reason for p in report.problems] == ["partial file left by an interrupted write (safe to delete)"]
    assert len(KeyframeDataset(dataset_copy)) > 0  # the dataset itself still loads
    # resuming the collection cleans the partial file up and adds nothing twice
    config = CollectionConfig(episodes_per_task=1, cameras=TINY_CAMERAS, image_size=TINY_IMAGE_SIZE)
    summary = collect_demos(dataset_copy, list(TINY_TASKS), config, resume=True, progress=False)
    assert sum(summary.collected.values()) == 0 and summary.skipped_existing == len(TINY_TASKS)
    assert not list(target.parent.glob("*.tmp"))
    assert check_dataset(dataset_copy).ok


def test_resume_adds_only_missing_episodes_and_refuses_to_mix(dataset_copy):
    config = CollectionConfig(episodes_per_task=2, cameras=TINY_CAMERAS, image_size=TINY_IMAGE_SIZE)
    with pytest.raises(DatasetError, match="--resume"):
        collect_demos(dataset_copy, ["drawer-open"], config, progress=False)
    summary = collect_demos(dataset_copy, ["drawer-open"], config, resume=True, progress=False)
    assert summary.collected == {"drawer-open": 1} and summary.skipped_existing == 1
    index = DatasetIndex.load(dataset_copy)
    seeds = sorted(e.seed for e in index.episodes if e.task == "drawer-open")
    assert seeds == [0, 1] and len({(e.task, e.seed) for e in index.episodes}) == len(index.episodes)
    other = CollectionConfig(episodes_per_task=1, cameras=("front",), image_size=TINY_IMAGE_SIZE)
    with pytest.raises(DatasetError, match="different dataset"):
        collect_demos(dataset_copy, ["drawer-open"], other, resume=True, progress=False)
    index_file = dataset_copy / INDEX_NAME  # demos of an older expert are not mixed with this expert's
    stored = json.loads(index_file.read_text())
    stored["collection"]["signature"]["expert_revision"] = EXPERT_REVISION - 1
    index_file.write_text(json.dumps(stored))
    with pytest.raises(DatasetError, match="expert_revision"):
        collect_demos(dataset_copy, ["drawer-open"], config, resume=True, progress=False)
    with pytest.raises(DatasetError, match="delete that folder to collect them anew, or pass --data DIR"):
        collect_into_cache(dataset_copy, ["drawer-open"], config, elsewhere="pass --data DIR")  # a command's cache
    assert check_dataset(dataset_copy).ok, "refused collections must not touch the data"


def test_unrelated_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    config = CollectionConfig(episodes_per_task=1, cameras=("front",), image_size=32)
    with pytest.raises(DatasetError, match="not empty"):
        collect_demos(tmp_path, ["reach"], config, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_collection_config_validation():
    with pytest.raises(ValueError, match=">= 1"):
        CollectionConfig(episodes_per_task=0)
    with pytest.raises(ValueError, match="store"):
        CollectionConfig(episodes_per_task=1, store="some")
    with pytest.raises(ValueError, match="32..1024"):
        CollectionConfig(episodes_per_task=1, image_size=4096)


def test_episode_files_carry_their_metadata(tiny_dataset):
    entry = DatasetIndex.load(tiny_dataset).episodes[0]
    with h5py.File(tiny_dataset / entry.file) as f:
        assert f.attrs["task"] == entry.task and f.attrs["seed"] == entry.seed
        assert json.loads(f.attrs["cameras"]) == list(TINY_CAMERAS)
        assert f["frames/front/rgb"].chunks == (1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
    assert Path(tiny_dataset / entry.file).stat().st_mode & 0o044, "episode files must be readable by others"
