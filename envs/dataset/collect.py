"""Collect expert demonstrations into a dataset directory (one HDF5 file per episode + index.json).

Episodes are identified by (task, seed): the seeds of a task are ``seed_base * 10_000 + attempt``;
failed expert attempts are recorded and skipped, so a task gets the first N successful seeds. The driver
owns the index and rewrites it atomically after every episode; workers (this process, or Ray actors)
only write their own episode files, atomically. ``resume`` continues an interrupted collection without
repeating or duplicating an episode.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cortico.atomic import TMP_SUFFIX
from cortico.envs.cameras import resolve_cameras, validate_image_size
from cortico.envs.dataset.index import (
    EPISODES_DIR,
    INDEX_NAME,
    DatasetError,
    DatasetIndex,
    EpisodeEntry,
    FailureEntry,
    episode_relpath,
    file_sha256,
    software_versions,
)
from cortico.envs.task_catalog import get_task
from cortico.ray_runtime import RayOptions

logger = logging.getLogger(__name__)

SEEDS_PER_BASE = 10_000
EVALUATION_SEED_OFFSET = 1_000_000  # evaluation episodes use seeds >= this, disjoint from demonstrations
MISMATCH_ADVICE = "choose another --out or pass --overwrite"  # the collect command's way out of a mismatch


@dataclass(frozen=True)
class CollectionConfig:
    """What to collect and how; stored in the index so a resumed or extended collection matches.

    Attributes:
        episodes_per_task: successful demonstrations wanted per task.
        cameras: camera names.
        image_size: square image size in pixels.
        store: ``"all"`` stores every step's images; ``"keyframes"`` the first step and the keyframes.
        seed: base seed; task seeds are ``seed * 10_000 + attempt``.
        max_attempts_per_task: expert attempts allowed per task before giving up (failures are reported).
        backend: environment backend name.
    """

    episodes_per_task: int
    cameras: tuple[str, ...] = ("front", "left_shoulder", "right_shoulder", "wrist")
    image_size: int = 128
    store: str = "all"
    seed: int = 0
    max_attempts_per_task: int | None = None
    backend: str = "metaworld"

    def __post_init__(self) -> None:
        if self.episodes_per_task < 1:
            raise ValueError(f"episodes per task must be >= 1, got {self.episodes_per_task}")
        object.__setattr__(self, "cameras", resolve_cameras(self.cameras))
        validate_image_size(self.image_size)
        if self.store not in ("all", "keyframes"):
            raise ValueError(f"store must be 'all' or 'keyframes', got {self.store!r}")
        if not 0 <= self.seed < EVALUATION_SEED_OFFSET // SEEDS_PER_BASE:
            raise ValueError(f"seed must be in 0..{EVALUATION_SEED_OFFSET // SEEDS_PER_BASE - 1}, got {self.seed}")
        if self.backend != "metaworld":
            raise ValueError(f"expert collection supports the 'metaworld' backend, got {self.backend!r}")

    @property
    def attempts_per_task(self) -> int:
        """Expert attempts allowed per task."""
        return self.max_attempts_per_task or 3 * self.episodes_per_task + 5

    def signature(self) -> dict[str, object]:
        """What must agree between a dataset and a collection that adds to it (settings, the experts' revision)."""
        from cortico.envs.expert_demos import EXPERT_REVISION  # imports MuJoCo: only when asked

        return {
            "backend": self.backend,
            "expert_revision": EXPERT_REVISION,
            "cameras": list(self.cameras),
            "image_size": self.image_size,
            "store": self.store,
        }

    @classmethod
    def like(cls, root: str | Path, episodes_per_task: int, seed: int) -> CollectionConfig:
        """More demos like the dataset at ``root`` (same backend, cameras, image size, storage) at another seed."""
        signature = DatasetIndex.load(root).collection["signature"]
        return cls(
            episodes_per_task=episodes_per_task, cameras=tuple(signature["cameras"]),
            image_size=int(signature["image_size"]), store=signature["store"], seed=seed,
            backend=signature["backend"],
        )  # fmt: skip

    def task_seed(self, attempt: int) -> int:
        """Seed of the ``attempt``-th expert attempt of a task."""
        return self.seed * SEEDS_PER_BASE + attempt


@dataclass
class CollectionSummary:
    """What a collection run did."""

    root: str
    requested: dict[str, int]
    collected: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    skipped_existing: int = 0
    seconds: float = 0.0
    short_tasks: list[str] = field(default_factory=list)
    workers: list[dict[str, object]] = field(default_factory=list)  # per-worker stats of a Ray collection

    @property
    def episodes_per_minute(self) -> float:
        """New episodes stored per minute of wall time."""
        new = sum(self.collected.values())
        return 60.0 * new / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (for ``--json`` and benchmarks)."""
        return {**asdict(self), "episodes_per_minute": self.episodes_per_minute}


def prepare_output(
    root: Path, config: CollectionConfig, *, resume: bool, overwrite: bool, mismatch_advice: str = MISMATCH_ADVICE
) -> DatasetIndex:
    """Open or create the dataset directory, refusing to mix incompatible or unrelated data.

    ``mismatch_advice`` ends the error for a dataset of other settings (what the calling command offers).
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    index_path = root / INDEX_NAME
    if overwrite and index_path.exists():
        logger.warning("overwriting the dataset in %s", root)
        index_path.unlink()
        shutil.rmtree(root / EPISODES_DIR, ignore_errors=True)
    if index_path.exists():
        index = DatasetIndex.load(root)
        if index.collection.get("signature") != config.signature():
            raise DatasetError(
                f"{root} holds demos collected with {index.collection.get('signature')}, a different dataset from "
                f"the {config.signature()} this collection asks for (a newer expert revision changes the demos); "
                f"{mismatch_advice}"
            )
        if not resume:
            raise DatasetError(
                f"{root} already holds a dataset; pass --resume to continue it or --overwrite to replace it"
            )
        _remove_partial_files(root)
        return index
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise DatasetError(f"{root} is not empty and holds no cortico dataset; choose an empty or new directory")
    root.mkdir(parents=True, exist_ok=True)
    index = DatasetIndex(
        collection={"signature": config.signature(), "seed": config.seed}, software=software_versions()
    )
    index.save(root)
    return index


def _remove_partial_files(root: Path) -> None:
    """Delete temporary files left by a killed writer (they were never part of the dataset)."""
    for partial in (root / EPISODES_DIR).rglob(f"*{TMP_SUFFIX}"):
        logger.info("removing partial file %s left by an interrupted collection", partial)
        partial.unlink()


@dataclass(frozen=True)
class EpisodeJob:
    """One expert attempt to run: (task, seed)."""

    task: str
    seed: int


def plan_jobs(
    tasks: list[str], config: CollectionConfig, index: DatasetIndex, pending: set[EpisodeJob] | None = None
) -> Iterator[EpisodeJob]:
    """Yield the attempts still needed, task by task, skipping (task, seed) pairs already in the index.

    ``pending`` attempts (running on a worker) count as if they had succeeded; a failure re-plans.
    """
    pending = pending or set()
    done = index.done() | {(job.task, job.seed) for job in pending}
    for task in tasks:
        have = sum(1 for e in index.episodes if e.task == task) + sum(1 for job in pending if job.task == task)
        attempts_used = sum(1 for t, _ in done if t == task)
        for attempt in range(config.attempts_per_task):
            if have >= config.episodes_per_task or attempts_used >= config.attempts_per_task:
                break
            seed = config.task_seed(attempt)
            if (task, seed) in done:
                continue
            yield EpisodeJob(task, seed)
            have += 1  # optimistic; the caller re-plans if an attempt fails
            attempts_used += 1


def run_episode_job(job: EpisodeJob, config: CollectionConfig, root: Path, env) -> EpisodeEntry | FailureEntry:  # noqa: ANN001
    """Record one expert episode with ``env`` and store it; returns the index entry."""
    from cortico.envs.dataset.episode_file import write_episode
    from cortico.envs.expert_demos import record_expert_episode

    record = record_expert_episode(env, job.seed, store=config.store)
    if not record.success:
        return FailureEntry(
            task=job.task, seed=job.seed, reason=f"expert did not succeed within {env.max_episode_steps} steps"
        )
    relpath = episode_relpath(job.task, job.seed)
    size = write_episode(root / relpath, record)
    return EpisodeEntry(
        file=relpath,
        task=job.task,
        seed=job.seed,
        instruction=record.instruction,
        length=record.num_steps,
        num_frames=len(record.frame_steps),
        keyframes=list(record.keyframes),
        sha256=file_sha256(root / relpath),
        bytes=size,
    )


def collect_into_cache(
    root: str | Path,
    tasks: list[str],
    config: CollectionConfig,
    *,
    elsewhere: str = "choose another directory",
    progress: bool = True,
    workers: int = 1,
    ray: RayOptions | None = None,
) -> CollectionSummary:
    """Collect, or complete, the demos a command keeps in its own folder (a benchmark's work directory).

    Demos recorded with other settings or by an older expert revision are refused with what to do
    (``elsewhere`` names the command's way to use other data), never mixed with new ones.
    """
    return collect_demos(
        root, tasks, config, resume=(Path(root) / INDEX_NAME).exists(), progress=progress, workers=workers, ray=ray,
        mismatch_advice=f"delete that folder to collect them anew, or {elsewhere}",
    )  # fmt: skip


def collect_demos(
    root: str | Path,
    tasks: list[str],
    config: CollectionConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[int], object] | bool = True,
    workers: int = 1,
    ray: RayOptions | None = None,
    mismatch_advice: str = MISMATCH_ADVICE,
) -> CollectionSummary:
    """Collect ``config.episodes_per_task`` successful expert demonstrations for each task.

    Args:
        root: dataset directory.
        tasks: task names.
        config: what to collect.
        resume: continue a dataset collected with the same settings.
        overwrite: replace an existing dataset in ``root``.
        progress: show a progress bar (True) or call this function with the number of new episodes.
        workers: 1 runs in this process; more run Ray env workers (the same episodes, in any order).
        ray: the Ray cluster and per-worker resources (default: local, one CPU per worker).
        mismatch_advice: what the error for a dataset of other settings in ``root`` tells the user to do.
    """
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tasks = [get_task(t).name for t in tasks]
    root = Path(root)
    index = prepare_output(root, config, resume=resume, overwrite=overwrite, mismatch_advice=mismatch_advice)
    summary = CollectionSummary(root=str(root), requested={t: config.episodes_per_task for t in tasks})
    existing = {t: sum(1 for e in index.episodes if e.task == t) for t in tasks}
    summary.skipped_existing = sum(min(n, config.episodes_per_task) for n in existing.values())
    total = len(tasks) * config.episodes_per_task
    bar = tqdm(total=total, initial=summary.skipped_existing, desc="collect", unit="ep", disable=progress is not True)

    def record(entry: EpisodeEntry | FailureEntry) -> None:
        """Add one finished attempt to the index (and save it atomically)."""
        if isinstance(entry, FailureEntry):
            index.failures.append(entry)
            summary.failures[entry.task] = summary.failures.get(entry.task, 0) + 1
            logger.info("expert failed on %s seed %d", entry.task, entry.seed)
        else:
            index.episodes.append(entry)
            summary.collected[entry.task] = summary.collected.get(entry.task, 0) + 1
        index.save(root)  # before anything else can interrupt: a reported episode is a saved one
        bar.set_postfix(task=entry.task, failures=sum(summary.failures.values()))
        if isinstance(entry, EpisodeEntry):
            bar.update(1)
            if callable(progress):
                progress(1)

    started = time.perf_counter()
    try:
        if workers == 1:
            _collect_in_process(root, tasks, config, index, record)
        else:
            summary.workers = _collect_with_workers(root, tasks, config, index, record, workers, ray or RayOptions())
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - started
    have = {t: sum(1 for e in index.episodes if e.task == t) for t in tasks}
    summary.short_tasks = [t for t in tasks if have[t] < config.episodes_per_task]
    return summary


def _collect_in_process(
    root: Path, tasks: list[str], config: CollectionConfig, index: DatasetIndex, record: Callable
) -> None:
    from cortico.envs.metaworld_backend import MetaWorldEnv

    for task in tasks:
        env = None
        while True:
            jobs = list(plan_jobs([task], config, index))
            if not jobs:
                break
            if env is None:
                env = MetaWorldEnv(task, cameras=config.cameras, image_size=config.image_size)
            record(run_episode_job(jobs[0], config, root, env))
        if env is not None:
            env.close()


def collect_episode_on_worker(
    worker, job: EpisodeJob, config: CollectionConfig, root: str
) -> EpisodeEntry | FailureEntry:  # noqa: ANN001
    """One collection episode inside a Ray :class:`~cortico.envs.workers.EnvWorker`."""
    return run_episode_job(job, config, Path(root), worker.env(job.task, config.cameras, config.image_size))


def _collect_with_workers(
    root: Path,
    tasks: list[str],
    config: CollectionConfig,
    index: DatasetIndex,
    record: Callable,
    workers: int,
    ray: RayOptions,
) -> list[dict[str, object]]:
    """Run the attempts on Ray env workers; the driver alone writes the index, in a canonical order at the end."""
    from cortico.envs.workers import WorkerPool
    from cortico.ray_runtime import clamp_workers, ray_session

    with ray_session(ray.address, dashboard=ray.dashboard) as session:
        pool = WorkerPool(clamp_workers(workers, ray.cpus_per_worker, session.cpus), ray.cpus_per_worker)
        try:
            pool.run(
                next_job=lambda: next(plan_jobs(tasks, config, index, pool.pending), None),
                function=collect_episode_on_worker,
                arguments=lambda job: (job, config, str(root)),
                on_result=lambda job, entry: record(entry),
            )
        finally:
            stats = pool.summary()
            pool.shutdown()
    _remove_partial_files(root)  # a worker killed mid-write leaves a temporary file, never a listed one
    rank = {task: n for n, task in enumerate(tasks)}
    index.episodes.sort(key=lambda e: (rank.get(e.task, -1), e.seed))
    index.failures.sort(key=lambda f: (rank.get(f.task, -1), f.seed))
    index.save(root)
    return stats
