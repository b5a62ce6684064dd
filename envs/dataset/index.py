"""The dataset index: ``DIR/index.json`` lists every stored episode and every failed expert attempt.

Written atomically after each episode, so an interrupted collection leaves an index that matches the
files on disk, and ``--resume`` continues from it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from cortico.atomic import write_json_atomic

INDEX_NAME = "index.json"
EPISODES_DIR = "episodes"
INDEX_FORMAT = "cortico-demos"
INDEX_VERSION = 1


class DatasetError(ValueError):
    """A dataset directory or its index is missing, malformed or inconsistent."""


@dataclass
class EpisodeEntry:
    """One stored episode as listed in the index."""

    file: str  # relative to the dataset root
    task: str
    seed: int
    instruction: str
    length: int
    num_frames: int
    keyframes: list[int]
    sha256: str
    bytes: int


@dataclass
class FailureEntry:
    """An expert attempt that did not succeed (no file is stored for it)."""

    task: str
    seed: int
    reason: str


@dataclass
class DatasetIndex:
    """Contents of ``index.json``.

    Attributes:
        collection: the settings every episode was collected with (backend, cameras, image size, ...);
            a collection into an existing directory must use the same settings.
        software: versions of the packages that produced the data.
    """

    collection: dict[str, Any]
    software: dict[str, str] = field(default_factory=dict)
    episodes: list[EpisodeEntry] = field(default_factory=list)
    failures: list[FailureEntry] = field(default_factory=list)

    @classmethod
    def load(cls, root: str | Path) -> DatasetIndex:
        """Read ``root/index.json``; :class:`DatasetError` explains what is wrong."""
        path = Path(root) / INDEX_NAME
        if not path.is_file():
            raise DatasetError(f"{root} is not a cortico dataset: {INDEX_NAME} is missing")
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != INDEX_FORMAT:
                raise DatasetError(f"{path}: format is {raw.get('format')!r}, expected {INDEX_FORMAT!r}")
            if raw.get("format_version") != INDEX_VERSION:
                raise DatasetError(
                    f"{path}: format_version {raw.get('format_version')}, this cortico reads {INDEX_VERSION}"
                )
            return cls(
                collection=dict(raw["collection"]),
                software=dict(raw.get("software", {})),
                episodes=[EpisodeEntry(**entry) for entry in raw["episodes"]],
                failures=[FailureEntry(**entry) for entry in raw.get("failures", [])],
            )
        except DatasetError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(f"{path} is malformed ({type(error).__name__}: {error})") from error

    def save(self, root: str | Path) -> None:
        """Write ``root/index.json`` atomically."""
        payload = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_VERSION,
            "collection": self.collection,
            "software": self.software,
            "episodes": [asdict(e) for e in self.episodes],
            "failures": [asdict(f) for f in self.failures],
        }
        write_json_atomic(Path(root) / INDEX_NAME, payload)

    def done(self) -> set[tuple[str, int]]:
        """(task, seed) of every stored episode and failed attempt: work that is not repeated on resume."""
        return {(e.task, e.seed) for e in self.episodes} | {(f.task, f.seed) for f in self.failures}

    def per_task(self) -> dict[str, dict[str, int]]:
        """Episode, keyframe and failure counts per task."""
        counts: dict[str, dict[str, int]] = {}
        for entry in self.episodes:
            row = counts.setdefault(entry.task, {"episodes": 0, "keyframes": 0, "frames": 0, "failures": 0})
            row["episodes"] += 1
            row["keyframes"] += len(entry.keyframes)
            row["frames"] += entry.num_frames
        for failure in self.failures:
            counts.setdefault(failure.task, {"episodes": 0, "keyframes": 0, "frames": 0, "failures": 0})
            counts[failure.task]["failures"] += 1
        return counts


def episode_relpath(task: str, seed: int) -> str:
    """Deterministic file name of the episode (task, seed), relative to the dataset root."""
    return f"{EPISODES_DIR}/{task}/seed_{seed:07d}.h5"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (detects truncation and bit rot)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of the packages that shape the data."""
    versions = {"python": platform.python_version()}
    for package in ("cortico", "metaworld", "mujoco", "numpy", "h5py", "gymnasium"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
