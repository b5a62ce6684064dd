"""Starting or joining Ray the same way for every command (laptop or cluster, no code change).

Address resolution: ``--ray-address`` if given, else the ``RAY_ADDRESS`` environment variable, else a
local instance sized to this machine. Ray's dashboard stays off unless asked for (it wants ports and
memory). Joining an unreachable cluster fails within seconds with a message that says what to do (Ray's
own default is to retry for many minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # small: episodes travel as files, not through the object store
REACH_TIMEOUT_S = 5.0  # a cluster address that does not answer within this is reported at once


@dataclass(frozen=True)
class RayOptions:
    """How a command uses Ray.

    The cluster address (None: ``RAY_ADDRESS`` or local), CPUs reserved per worker (fractions allowed) and
    whether Ray's dashboard runs.
    """

    address: str | None = None
    cpus_per_worker: float = 1.0
    dashboard: bool = False


def add_ray_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--workers``, ``--cpus-per-worker``, ``--ray-address`` and ``--ray-dashboard`` options."""
    parser.add_argument("--workers", type=int, default=1, help=f"Ray workers for {what} (1: in this process)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray CPUs per worker (fractions allowed)")
    parser.add_argument("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local instance)")
    parser.add_argument("--ray-dashboard", action="store_true", help="start Ray's dashboard (off by default)")


def ray_options(args: argparse.Namespace) -> RayOptions:
    """The options of :func:`add_ray_arguments` as a :class:`RayOptions`."""
    return RayOptions(args.ray_address, args.cpus_per_worker, args.ray_dashboard)


def format_worker_summary(stats: list[dict[str, Any]]) -> str:
    """One line per worker: episodes, throughput, failures and process ids."""
    return "\n".join(
        f"  worker {s['slot']}: {s['episodes']} episodes, {s['episodes_per_minute']:.1f}/min busy, "
        f"{s['failures']} failure(s), pid {', '.join(str(p) for p in s['pids'])}"
        for s in stats
    )


@dataclass(frozen=True)
class RaySession:
    """What a command is running on: the address joined (None: a local instance) and its CPUs and GPUs."""

    address: str | None
    cpus: float
    gpus: float
    started_here: bool


def resolve_address(address: str | None) -> str | None:
    """``address`` (``"auto"`` allowed), else ``RAY_ADDRESS``, else None (start a local instance)."""
    if address is not None and not address.strip():
        raise ValueError("--ray-address must not be empty (omit it to start a local Ray instance)")
    return address or os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    dashboard: bool = False,
    runtime_env: dict[str, Any] | None = None,
) -> Iterator[RaySession]:
    """Join the cluster at ``address`` (see :func:`resolve_address`) or start a local Ray; shut down after.

    A Ray already initialised in this process (``ray.init`` in a notebook, or a test session's shared
    one) is reused and left running; an explicit address must still be reachable.
    """
    import ray

    target = resolve_address(address)
    if target is not None:
        check_reachable(target)
    if ray.is_initialized():
        resources = ray.cluster_resources()
        yield RaySession(None, resources.get("CPU", 0.0), resources.get("GPU", 0.0), started_here=False)
        return
    options: dict[str, Any] = {"include_dashboard": dashboard, "log_to_driver": True, "runtime_env": runtime_env}
    if target is None:
        options.update(num_cpus=num_cpus or os.cpu_count(), object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    try:
        ray.init(address=target, **options)
    except (ConnectionError, RuntimeError, TimeoutError) as error:
        if target is None:
            raise
        raise ConnectionError(
            f"could not reach a Ray cluster at {target!r} ({error}). Start one with `ray start --head` on the "
            "head node, check the address and firewall, or omit --ray-address and unset RAY_ADDRESS to run locally"
        ) from error
    try:
        resources = ray.cluster_resources()
        session = RaySession(target, resources.get("CPU", 0.0), resources.get("GPU", 0.0), started_here=True)
        logger.info("Ray %s: %.0f CPUs, %.0f GPUs", target or "local instance", session.cpus, session.gpus)
        yield session
    finally:
        ray.shutdown()


def check_reachable(address: str) -> None:
    """Fail at once when a ``host:port`` cluster address does not accept connections.

    Ray itself retries an unreachable address for many minutes; ``auto`` and ``ray://`` addresses are
    left to Ray.
    """
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a Ray address is host:port (or 'auto'), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as error:
        raise ConnectionError(
            f"could not reach a Ray cluster at {address!r} ({error}). Start one with `ray start --head` on the "
            "head node, check the address and firewall, or omit --ray-address and unset RAY_ADDRESS to run locally"
        ) from error


def clamp_workers(requested: int, cpus_per_worker: float, available_cpus: float) -> int:
    """The number of workers that fit: refuses < 1, warns and clamps when the CPUs cannot hold them all."""
    if requested < 1:
        raise ValueError(f"--workers must be at least 1, got {requested}")
    if cpus_per_worker <= 0:
        raise ValueError(f"CPUs per worker must be positive, got {cpus_per_worker}")
    fitting = int(available_cpus // cpus_per_worker + 1e-9)
    if fitting < 1:
        raise ValueError(
            f"one worker needs {cpus_per_worker} CPUs but the Ray cluster has {available_cpus:g}; "
            "lower --cpus-per-worker"
        )
    if requested > fitting:
        logger.warning(
            "%d workers x %g CPUs do not fit in %g CPUs; using %d workers", requested, cpus_per_worker,
            available_cpus, fitting,
        )  # fmt: skip
        return fitting
    return requested
