"""Ray env workers: the same episodes whatever the number of workers, and a killed worker's episode retried."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pytest

from cortico.envs.dataset.collect import CollectionConfig, collect_demos
from cortico.envs.dataset.index import DatasetIndex
from cortico.ray_runtime import RayOptions

TASKS = ["drawer-close", "button-press-topdown"]
CONFIG = CollectionConfig(episodes_per_task=2, cameras=("front",), image_size=48, store="keyframes")
HALF_CPU = RayOptions(cpus_per_worker=1.0)
pytestmark = pytest.mark.usefixtures("local_ray")  # one Ray for the whole session


def episodes(root: Path) -> list[tuple]:
    index = DatasetIndex.load(root)
    return [(e.task, e.seed, e.instruction, e.length, tuple(e.keyframes)) for e in index.episodes]


def _env_workers(processes: Iterable[psutil.Process]) -> list[int]:
    """Process ids of those ``processes`` that are Ray env workers (Ray titles them ``ray::EnvWorker...``)."""
    found = []
    for process in processes:
        try:
            if any("ray::EnvWorker" in part for part in process.cmdline()):
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def env_worker_pids() -> list[int]:
    """Process ids of this test's live Ray env workers.

    Only descendants of this process count: the local Ray instance is started from here, and another
    test process (pytest-xdist) may run env workers of its own at the same time.
    """
    return _env_workers(psutil.Process().children(recursive=True))


def still_running_env_workers(pids: set[int]) -> list[int]:
    """Those of ``pids`` still alive as Ray env workers (wherever they were reparented)."""

    def live() -> Iterator[psutil.Process]:
        for pid in pids:
            try:
                process = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            yield process

    return _env_workers(live())


@pytest.mark.slow
def test_two_workers_collect_exactly_the_episodes_of_one(tmp_path: Path) -> None:
    serial = collect_demos(tmp_path / "one", TASKS, CONFIG, progress=False)
    parallel = collect_demos(tmp_path / "two", TASKS, CONFIG, progress=False, workers=2, ray=HALF_CPU)
    assert episodes(tmp_path / "one") == episodes(tmp_path / "two")
    assert serial.collected == parallel.collected == {t: 2 for t in TASKS}
    assert [w["slot"] for w in parallel.workers] == [0, 1]
    assert sum(w["episodes"] for w in parallel.workers) >= 4
    assert all(w["failures"] == 0 for w in parallel.workers)


@pytest.mark.slow
def test_a_killed_worker_still_leaves_every_episode_exactly_once(tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_one_worker(new: int) -> None:
        if killed:
            return
        pids = env_worker_pids()
        assert len(pids) == 2, pids
        psutil.Process(pids[0]).kill()  # SIGKILL: no clean-up, maybe in the middle of an episode
        killed.append(pids[0])

    config = CollectionConfig(episodes_per_task=3, cameras=("front",), image_size=48, store="keyframes")
    summary = collect_demos(tmp_path / "d", TASKS, config, progress=kill_one_worker, workers=2, ray=HALF_CPU)
    assert killed
    index = DatasetIndex.load(tmp_path / "d")
    keys = [(e.task, e.seed) for e in index.episodes]
    assert len(keys) == len(set(keys)) == 6 and summary.collected == {t: 3 for t in TASKS}
    files = sorted(p for p in (tmp_path / "d" / "episodes").rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path / "d").as_posix() for p in files] == sorted(e.file for e in index.episodes)
    assert sum(w["failures"] for w in summary.workers) == 1
    replaced = [w for w in summary.workers if len(w["pids"]) == 2]
    assert len(replaced) == 1 and killed[0] in replaced[0]["pids"]
    json.dumps(summary.to_dict())  # the summary with worker stats is JSON-friendly
    # Ray is shut down: no worker outlives the command (checked by pid: an orphan is no longer our descendant)
    worker_pids = {pid for worker in summary.workers for pid in worker["pids"]}
    assert len(worker_pids) == 3
    deadline = time.time() + 30
    while still_running_env_workers(worker_pids) and time.time() < deadline:
        time.sleep(0.5)
    assert not still_running_env_workers(worker_pids)


def test_resume_after_an_interrupted_parallel_collection(tmp_path: Path) -> None:
    def interrupt(new: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        collect_demos(tmp_path / "d", TASKS[:1], CONFIG, progress=interrupt, workers=2, ray=HALF_CPU)
    assert len(DatasetIndex.load(tmp_path / "d").episodes) == 1
    collect_demos(tmp_path / "d", TASKS[:1], CONFIG, progress=False, workers=2, ray=HALF_CPU, resume=True)
    index = DatasetIndex.load(tmp_path / "d")
    assert sorted(e.seed for e in index.episodes) == [0, 1]


def test_an_episode_that_keeps_failing_is_given_up_by_name() -> None:
    from cortico.envs.workers import EpisodeFailedError, WorkerPool
    from cortico.ray_runtime import ray_session

    def explode(worker, job):  # noqa: ANN001, ANN202  (a nested function travels to the worker by value)
        raise RuntimeError(f"simulator exploded on {job}")

    jobs = iter([("drawer-open", 7)])
    with ray_session(num_cpus=2):
        pool = WorkerPool(1, cpus_per_worker=0.5, max_retries=2)
        try:
            with pytest.raises(EpisodeFailedError, match=r"\('drawer-open', 7\) failed on 3 workers"):
                pool.run(lambda: next(jobs, None), explode, lambda job: (job,), lambda job, result: None)
        finally:
            pool.shutdown()
    assert pool.stats[0].failures == 3
