"""Ray env workers: actors that each own simulators and run episodes, and a fault-tolerant pool to drive them.

An :class:`EnvWorker` keeps one simulator per (task, cameras, image size) and runs whatever episode
function it is given (collection and evaluation supply their own), so the worker knows nothing about
datasets or policies. The :class:`WorkerPool` hands out jobs as workers become free; when a worker
process dies mid-episode (killed, simulator crash) its job goes to a fresh worker, at most
``max_retries`` times, after which the episode is named in the error. Jobs are identified by their
(task, seed), so what comes back does not depend on how many workers ran it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class EpisodeFailedError(RuntimeError):
    """An episode failed on every worker it was given to."""


class EnvWorker:
    """One worker process: cached simulators, a cache for heavy objects (e.g. a loaded policy), any job."""

    def __init__(self) -> None:
        # Mesa's software rasteriser starts one thread per core unless told; Ray gives each worker its CPU share
        # as OMP_NUM_THREADS, so workers on one machine do not fight over the cores (read when GL starts).
        os.environ.setdefault("LP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
        import cortico.envs  # noqa: F401  (configures the headless GL backend before any simulator exists)

        self.envs: dict[tuple, Any] = {}
        self.cache: dict[Hashable, Any] = {}

    def pid(self) -> int:
        """Process id of this worker."""
        return os.getpid()

    def env(self, task: str, cameras: tuple[str, ...], image_size: int, max_episode_steps: int = 500):  # noqa: ANN201
        """The simulator for ``task`` with these cameras (created once per worker)."""
        from cortico.envs.metaworld_backend import MetaWorldEnv

        key = (task, tuple(cameras), image_size, max_episode_steps)
        if key not in self.envs:
            self.envs[key] = MetaWorldEnv(
                task, cameras=list(cameras), image_size=image_size, max_episode_steps=max_episode_steps
            )
        return self.envs[key]

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(self, *args)`` here (an episode of collection or evaluation)."""
        return function(self, *args)

    def close(self) -> None:
        """Close every simulator."""
        for env in self.envs.values():
            env.close()
        self.envs.clear()


@dataclass
class WorkerStats:
    """What one worker slot did (a slot keeps its number when its process is replaced)."""

    slot: int
    pids: list[int] = field(default_factory=list)
    episodes: int = 0
    busy_seconds: float = 0.0
    failures: int = 0

    @property
    def episodes_per_minute(self) -> float:
        """Episodes finished per minute of busy time."""
        return 60.0 * self.episodes / self.busy_seconds if self.busy_seconds else 0.0


class WorkerPool:
    """``workers`` Ray actors of :class:`EnvWorker` (``cpus_per_worker`` each, fractions allowed).

    Needs a running Ray (see :func:`cortico.ray_runtime.ray_session`).
    """

    def __init__(self, workers: int, cpus_per_worker: float = 1.0, max_retries: int = 2) -> None:
        import ray

        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._remote = ray.remote(EnvWorker).options(num_cpus=cpus_per_worker, max_restarts=0)
        self.max_retries = max_retries
        self.actors = [self._remote.remote() for _ in range(workers)]
        self.stats = [WorkerStats(slot) for slot in range(workers)]
        for slot, pid in enumerate(ray.get([a.pid.remote() for a in self.actors])):
            self.stats[slot].pids.append(pid)
        self.in_flight: dict[Any, tuple[int, Hashable, float]] = {}
        self.attempts: dict[Hashable, int] = {}

    @property
    def pending(self) -> set[Hashable]:
        """Jobs now running on a worker."""
        return {job for _, job, _ in self.in_flight.values()}

    def pids(self) -> list[int]:
        """The current process id of every worker slot."""
        return [s.pids[-1] for s in self.stats]

    def run(
        self,
        next_job: Callable[[], Hashable | None],
        function: Callable[..., Any],
        arguments: Callable[[Hashable], tuple],
        on_result: Callable[[Hashable, Any], None],
    ) -> None:
        """Keep every worker busy with ``function(worker, *arguments(job))`` until ``next_job`` has no more.

        ``next_job`` is asked whenever a worker is free (it may plan from the results so far and from
        :attr:`pending`); ``on_result`` runs in this process, in completion order.
        """
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        idle = deque(range(len(self.actors)))
        retry: deque[Hashable] = deque()
        while True:
            while idle:
                job = retry.popleft() if retry else next_job()
                if job is None:
                    break
                slot = idle.popleft()
                reference = self.actors[slot].call.remote(function, *arguments(job))
                self.in_flight[reference] = (slot, job, time.perf_counter())
            if not self.in_flight:
                return
            [ready], _ = ray.wait(list(self.in_flight), num_returns=1)
            slot, job, started = self.in_flight.pop(ready)
            stats = self.stats[slot]
            try:
                result = ray.get(ready)
            except (RayActorError, RayTaskError) as error:
                stats.failures += 1
                self.attempts[job] = self.attempts.get(job, 0) + 1
                if self.attempts[job] > self.max_retries:
                    raise EpisodeFailedError(
                        f"episode {job} failed on {self.attempts[job]} workers; giving up (last error: {error})"
                    ) from error
                logger.warning(
                    "worker %d failed on %s (%s); retrying on a fresh worker", slot, job, type(error).__name__
                )
                if isinstance(error, RayActorError):
                    self.actors[slot] = self._remote.remote()
                    stats.pids.append(ray.get(self.actors[slot].pid.remote()))
                retry.append(job)
                idle.append(slot)
                continue
            stats.episodes += 1
            stats.busy_seconds += time.perf_counter() - started
            idle.append(slot)
            on_result(job, result)

    def summary(self) -> list[dict[str, Any]]:
        """Per-worker episodes, throughput and failures (for the command's summary)."""
        return [asdict(s) | {"episodes_per_minute": s.episodes_per_minute} for s in self.stats]

    def shutdown(self) -> None:
        """Close the simulators and end the worker processes."""
        import ray

        for actor in self.actors:
            try:
                ray.get(actor.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001  (a dead or stuck worker is killed below anyway)
                pass
            ray.kill(actor, no_restart=True)
        self.actors = []
