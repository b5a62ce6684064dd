"""The streaming QA benchmark end to end on a small real dataset, and its train/test stream split."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cortico.envs.dataset.index import DatasetError
from cortico.memory.bench import (
    BenchConfig,
    accuracy_by_evidence_age,
    accuracy_by_history,
    check_heldout_demos,
    default_workdir,
    perception_quality,
    pool_bins,
    prepare_workdir,
    reader_split,
    run_benchmark,
    run_settings,
    shared_encoder,
)
from cortico.memory.qa import Question
from cortico.memory.records import FrameRecord, MemoryInputError
from cortico.memory.streams import plan_benchmark_streams


def test_held_out_streams_share_no_episode_with_training_streams(mt10_small: Path) -> None:
    train, test = plan_benchmark_streams(mt10_small, train_streams=6, test_streams=2, episodes_per_stream=5, seed=3)
    held_out = {e for plan in test for e in plan}
    assert len(held_out) == 10  # no episode in two test streams
    assert all(len(set(plan)) == 5 and not held_out & set(plan) for plan in train)
    assert len({tuple(plan) for plan in train}) == 6  # training chains differ
    assert plan_benchmark_streams(mt10_small, 6, 2, 5, seed=3) == (train, test)
    with pytest.raises(DatasetError, match="need 25 episodes"):
        plan_benchmark_streams(mt10_small, 1, 4, 5, seed=0)


def test_the_benchmark_runs_end_to_end_and_respects_every_budget(
    mt10_small: Path, heldout_demos: Path, tmp_path: Path
) -> None:
    config = BenchConfig(
        train_streams=3, test_streams=1, episodes_per_stream=4, questions_per_stream=8, budgets=(2, 4),
        policies=("cortico", "uniform"), encoder_steps=10, encoder_scenes_per_task=2, reader_steps=4, readers=2,
        reader_candidates=3, selection_streams=1, sources_per_question=2,
    )  # fmt: skip
    workdir = tmp_path / "work"
    results = run_benchmark(mt10_small, config, progress=False, workdir=workdir, checkpoint_every=3)
    assert set(results["policies"]) == {"cortico@2", "uniform@2", "cortico@4", "uniform@4"}
    assert results["streams"]["test_questions"] > 0
    for bound in ("blind", "oracle"):
        assert 0.0 <= results[bound]["overall"] <= 1.0
    perceived = results["perceived_object"]  # the encoder's object position is checked against the simulator's
    assert perceived["frames"] == sum(results["streams"]["frames_per_stream"][3:])
    assert perceived["median_xy_error_cm"] >= 0.0 and 0.0 <= perceived["region_agreement"] <= 1.0
    assert perceived["task_starts"] == 4 and 0.0 <= perceived["task_start_region_agreement"] <= 1.0  # one stream
    assert perceived["pre_grasp_frames"] > 0 and 0.0 <= perceived["pre_grasp_region_agreement"] <= 1.0
    for row in results["policies"].values():
        assert row["peak_tokens"] <= row["budget_tokens"]
        assert 0.0 <= row["accuracy"]["overall"] <= 1.0
        assert row["backward_evidence_retained"] is None or 0.0 <= row["backward_evidence_retained"] <= 1.0
        assert len(row["accuracy_per_reader"]["overall"]) == 2  # each of the ensemble's readers scored alone
        bins = row["backward_by_history"]["bins"].values()  # every backward question in one bin
        asked = sum(b["questions"] for b in bins)
        if "mode:backward" in row["accuracy"]:
            assert asked > 0
            assert sum(b["correct"] for b in bins) / asked == pytest.approx(row["accuracy"]["mode:backward"])
        else:
            assert asked == 0
        assert sum(b["questions"] for b in row["backward_by_evidence_age"]["bins"].values()) == asked
    assert set(results["backward_by_evidence_age_pooled"]) == {"cortico", "uniform"}
    assert results["readers"] == 2 and len(results["reader_final_loss"]) == 2
    selection = results["reader_selection"]  # three candidates trained, the two best on a held-out stream kept
    assert [c["seed"] for c in selection] == [0, 1, 2] and sum(c["kept"] for c in selection) == 2
    assert {c["judged_on"] for c in selection} == {"1 held-out training streams"}
    kept_losses = [c["final_loss"] for c in selection if c["kept"]]
    assert kept_losses == results["reader_final_loss"]
    pooled = results["backward_by_history_pooled"]
    assert set(pooled) == {"cortico", "uniform"}
    for label, cell in pooled["cortico"].items():
        rows = [results["policies"][f"cortico@{f}"]["backward_by_history"]["bins"][label] for f in (2, 4)]
        assert cell["questions"] == sum(r["questions"] for r in rows)

    # a run interrupted after its first reader, in a folder beside the first run's: it resumes, takes the encoder
    # the first run kept (same encoder settings and demos), and gives the same results (progress saved or not)
    stages = {"encoder", "reader-0", "reader-1", "reader-2", "blind"}
    assert results["stages_loaded"] == [] and stages <= set(os.listdir(workdir))
    assert not [name for name in os.listdir(workdir) if name.endswith(".partial")]  # progress goes once kept
    assert results["encoder_shared_from"] is None
    interrupted = tmp_path / "interrupted"
    shutil.copytree(workdir / "reader-0", interrupted / "reader-0")
    resumed = run_benchmark(mt10_small, config, progress=False, workdir=interrupted)
    assert resumed["stages_loaded"] == ["encoder", "reader-0"]
    assert resumed["encoder_shared_from"] == str(workdir / "encoder") and (interrupted / "encoder").is_dir()
    assert _without_timings(resumed) == _without_timings(results)
    with pytest.raises(MemoryInputError, match=r"other settings \(readers: 2 there, 3 here\)"):
        run_benchmark(mt10_small, dataclasses.replace(config, readers=3, reader_candidates=4), progress=False,
                      workdir=workdir)  # fmt: skip
    # one more reader candidate, and the kept stages also read streams chained from a second demo collection
    more = run_benchmark(mt10_small, dataclasses.replace(config, reader_candidates=4), progress=False, workdir=workdir,
                         heldout_data=heldout_demos, heldout_streams=1)  # fmt: skip
    assert more["stages_loaded"] == ["encoder", "reader-0", "reader-1", "reader-2", "blind"]  # one more reader trained
    assert len(more["reader_selection"]) == 4 and len(more["reader_final_loss"]) == 2
    heldout = more["heldout"]
    assert heldout["data"] == str(heldout_demos) and heldout["streams"]["test"] == 1
    assert heldout["streams"]["test_questions"] > 0 and len(heldout["streams"]["frames_per_stream"]) == 1
    assert heldout["perceived_object"]["task_starts"] == 4
    assert set(heldout["policies"]) == set(results["policies"])
    for row in heldout["policies"].values():
        assert row["peak_tokens"] <= row["budget_tokens"] and 0.0 <= row["accuracy"]["overall"] <= 1.0
    assert set(heldout["backward_by_history_pooled"]) == {"cortico", "uniform"}
    assert {"blind", "oracle", "oracle_per_reader", "cells"} <= set(heldout)


@pytest.fixture(scope="module")
def heldout_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One episode each of four MT10 tasks, collected like ``mt10_small`` (48 px, every step) but from seed 1."""
    from cortico.envs import SUITES
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos

    root = tmp_path_factory.mktemp("datasets") / "heldout"
    config = CollectionConfig(episodes_per_task=1, cameras=("front",), image_size=48, seed=1)
    summary = collect_demos(root, list(SUITES["mt10"])[:4], config, progress=False)
    assert not summary.short_tasks
    return root


def test_heldout_demos_must_be_other_episodes_made_alike(mt10_small: Path, heldout_demos: Path, tmp_path: Path):
    check_heldout_demos(mt10_small, heldout_demos)  # other seeds, same image size: accepted (cameras may differ)
    with pytest.raises(MemoryInputError, match=r"share 20 episodes \(task, seed\) with the training demos"):
        check_heldout_demos(mt10_small, mt10_small)
    index = json.loads((heldout_demos / "index.json").read_text())
    index["collection"]["signature"]["image_size"] = 64
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.json").write_text(json.dumps(index))
    with pytest.raises(MemoryInputError, match="collect the held-out demos with the training demos' settings"):
        check_heldout_demos(mt10_small, other)
    with pytest.raises(ValueError, match="heldout_streams needs heldout_data"):
        run_benchmark(mt10_small, BenchConfig(), progress=False, heldout_streams=2)


def _without_timings(results: dict) -> dict:
    """A benchmark's results less what depends on the machine's speed or on what was loaded."""
    loading = ("seconds", "update_ms_per_frame", "stages_loaded", "encoder_shared_from")
    kept = {k: v for k, v in results.items() if k not in loading}
    kept["policies"] = {
        name: {k: v for k, v in row.items() if k not in ("ms_per_frame_with_queries", "reader_ms_per_answer")}
        for name, row in results["policies"].items()
    }
    return kept


def _question(frame: int, mode: str) -> Question:
    return Question(f"q{frame}{mode}", 0, "interaction", mode, "t", frame, frame / 10, (0.0, 0.0), "?", ("a",) * 4, 0)


def test_backward_accuracy_is_binned_by_the_history_seen_when_asked() -> None:
    questions = [_question(49, "backward"), _question(149, "backward"), _question(199, "backward"),
                 _question(999, "backward"), _question(150, "forward")]  # fmt: skip
    correct = np.array([True, False, True, True, True])
    report = accuracy_by_history(questions, correct, budget_frames=10)  # histories 5x, 15x, 20x, 100x
    bins = report["bins"]
    assert bins["0-10x"] == {"questions": 1, "correct": 1, "accuracy": 1.0}
    assert bins["10-20x"] == {"questions": 1, "correct": 0, "accuracy": 0.0}, "the forward question is not counted"
    assert bins["20-40x"] == {"questions": 1, "correct": 1, "accuracy": 1.0}  # 20x belongs to the bin it starts
    assert bins["40-80x"] == {"questions": 0, "correct": 0, "accuracy": None}
    assert bins[">=80x"]["questions"] == 1
    assert report["history_to_budget"] == {"min": 5.0, "median": 17.5, "max": 100.0}


def test_backward_accuracy_is_binned_by_the_evidence_age_when_asked() -> None:
    def asked(time: float, evidence_end: float, mode: str = "backward") -> Question:
        return dataclasses.replace(_question(int(10 * time), mode), time=time, evidence=(0.0, evidence_end))

    questions = [asked(5.0, 4.5), asked(5.0, 2.0), asked(20.0, 1.0), asked(20.0, 11.0), asked(9.0, 0.0, "forward")]
    correct = np.array([True, True, False, True, False])
    report = accuracy_by_evidence_age(questions, correct)  # ages 0.5, 3, 19 and 9 s (the forward one not counted)
    bins = report["bins"]
    assert bins["0-2s"] == {"questions": 1, "correct": 1, "accuracy": 1.0}
    assert bins["2-4s"] == {"questions": 1, "correct": 1, "accuracy": 1.0}
    assert bins["4-8s"] == {"questions": 0, "correct": 0, "accuracy": None}
    assert bins["8-16s"] == {"questions": 1, "correct": 1, "accuracy": 1.0}
    assert bins[">=16s"] == {"questions": 1, "correct": 0, "accuracy": 0.0}
    assert report["age_seconds"] == {"min": 0.5, "median": 6.0, "max": 19.0}


def test_history_bins_are_pooled_over_budgets() -> None:
    def row(policy: str, questions: int, correct: int) -> dict:
        bins = {"0-10x": {"questions": questions, "correct": correct}, ">=80x": {"questions": 0, "correct": 0}}
        return {"policy": policy, "backward_by_history": {"bins": bins}}

    pooled = pool_bins({"a@5": row("a", 4, 3), "a@10": row("a", 6, 1), "b@5": row("b", 2, 2)}, "backward_by_history")
    assert pooled["a"]["0-10x"] == {"questions": 10, "correct": 4, "accuracy": 0.4}
    assert pooled["a"][">=80x"] == {"questions": 0, "correct": 0, "accuracy": None}
    assert pooled["b"]["0-10x"]["accuracy"] == 1.0


def test_perception_quality_scores_what_the_encoder_saw_against_the_simulator(stream) -> None:
    perceived = stream.object.copy()
    perceived[21] = [-0.1, 0.8, 0.0]  # far left: wrong before the pick-place grasp (frame 24)
    perceived[25] = [-0.1, 0.8, 0.0]  # wrong after it: not a pre-grasp frame
    perceived[30] = [0.1, 0.5, 0.0]  # near right at drawer-close's first frame: the drawer is far right
    records = [
        FrameRecord(i, float(t), np.ones(2, np.float32), np.ones((1, 2), np.float32), {"object_position": tuple(p)})
        for i, (t, p) in enumerate(zip(stream.times, perceived))
    ]
    quality = perception_quality([stream], [records])
    assert quality["frames"] == 40 and quality["task_starts"] == 4
    assert quality["region_agreement"] == pytest.approx(37 / 40)
    assert quality["task_start_region_agreement"] == pytest.approx(3 / 4)
    # pre-grasp frames: 10 + 10 + 4 (20-23, the grasp at 24) + 10; wrong: 21 and 30
    assert quality["pre_grasp_frames"] == 34
    assert quality["pre_grasp_region_agreement"] == pytest.approx(32 / 34)


def test_a_kept_folder_made_with_a_setting_that_no_longer_exists_is_refused_by_name(tmp_path):
    (tmp_path / "demos").mkdir()
    (tmp_path / "demos" / "index.json").write_text("{}")
    workdir = tmp_path / "run"
    workdir.mkdir()
    stored = run_settings(BenchConfig(), tmp_path / "demos")
    stored["config"]["retired_option"] = 4
    (workdir / "bench.json").write_text(json.dumps(stored))
    with pytest.raises(MemoryInputError, match="no longer has: retired_option"):
        prepare_workdir(workdir, BenchConfig(), tmp_path / "demos")
    assert json.loads((workdir / "bench.json").read_text()) == stored  # what was kept is untouched


def test_the_work_folder_follows_what_the_demos_are_not_where_they_lie(tmp_path):
    """``--data`` pointing at a copy of the cached demos finds the stages trained on them; other demos do not."""
    for name in ("cache", "copy", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.json").write_text('{"episodes": []}' if name != "other" else '{"episodes": [1]}')
    folders = {
        name: default_workdir(BenchConfig(), tmp_path / name, root=tmp_path / "bench")
        for name in ("cache", "copy", "other")
    }
    assert folders["cache"] == folders["copy"] != folders["other"]
    assert folders["cache"] != default_workdir(BenchConfig(seed=1), tmp_path / "cache", root=tmp_path / "bench")


def test_only_a_run_with_the_same_encoder_settings_and_demos_shares_its_encoder(tmp_path):
    demos, other_demos, root = tmp_path / "demos", tmp_path / "other-demos", tmp_path / "bench"
    for folder, index in ((demos, '{"episodes": []}'), (other_demos, '{"episodes": [1]}')):
        folder.mkdir()
        (folder / "index.json").write_text(index)
    config = BenchConfig()

    def kept(name: str, settings: BenchConfig, data: Path = demos, encoder: bool = True) -> Path:
        folder = root / name
        folder.mkdir(parents=True)
        prepare_workdir(folder, settings, data)
        if encoder:
            (folder / "encoder").mkdir()
        return folder

    mine = kept("mine", config, encoder=False)
    kept("a-other-seed", dataclasses.replace(config, seed=1))
    kept("b-other-demos", config, other_demos)
    kept("c-no-encoder-yet", config, encoder=False)
    old = kept("d-old", config)  # kept by a version without one of the encoder's settings
    stored = json.loads((old / "bench.json").read_text())
    del stored["config"]["encoder_scenes_per_task"]
    (old / "bench.json").write_text(json.dumps(stored))
    kept("e-corrupt", config).joinpath("bench.json").write_text("{")
    kept("e-not-settings", config).joinpath("bench.json").write_text("[]")
    assert shared_encoder(mine, config, demos) is None
    readers_differ = kept("f-readers-differ", dataclasses.replace(config, reader_attention_dropout=0.0, readers=5))
    assert shared_encoder(mine, config, demos) == readers_differ / "encoder"
    assert shared_encoder(mine, dataclasses.replace(config, encoder_steps=10), demos) is None
    assert shared_encoder(tmp_path / "nowhere" / "run", config, demos) is None


def test_readers_are_selected_by_their_mean_accuracy_over_templates() -> None:
    from cortico.memory.reader import select_readers

    knows_all = {"common": 0.9, "rare": 0.9}
    never_learned_rare = {"common": 1.0, "rare": 0.25}  # more often right overall, but one template at chance
    assert select_readers([never_learned_rare, knows_all, knows_all], keep=2) == [1, 2]
    assert select_readers([knows_all, knows_all], keep=1) == [0]  # a tie keeps the earlier seed
    with pytest.raises(ValueError, match="between 1 and the 2 readers"):
        select_readers([knows_all, knows_all], keep=3)


def test_the_last_training_streams_judge_the_reader_candidates() -> None:
    config = BenchConfig(train_streams=24, readers=3, reader_candidates=6, selection_streams=4)
    assert reader_split(config) == (range(20), range(20, 24))  # the readers never see the judging streams
    assert reader_split(BenchConfig()) == (range(24), range(24, 24))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"selection_streams": 1}, "needs reader_candidates above readers"),
        ({"selection_streams": 24, "reader_candidates": 2}, r"between 0 and train_streams - 1 \(23\)"),
    ],
)
def test_selection_streams_need_candidates_and_training_streams_left(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchConfig(**settings)
