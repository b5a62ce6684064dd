"""Validate a dataset directory: index, files, checksums and contents, without crashing on bad data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py

from cortico.atomic import TMP_SUFFIX
from cortico.envs.dataset.episode_file import CorruptEpisodeError, validate_episode
from cortico.envs.dataset.index import EPISODES_DIR, INDEX_NAME, DatasetError, DatasetIndex, file_sha256


@dataclass
class Problem:
    """One bad file and why."""

    file: str
    reason: str


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`."""

    root: str
    episodes_ok: int = 0
    episodes_listed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {**asdict(self), "ok": self.ok}


def check_dataset(root: str | Path, *, checksums: bool = True) -> CheckReport:
    """Check every episode listed in the index and every file under ``episodes/``.

    Args:
        root: dataset directory.
        checksums: also compare each file's SHA-256 with the index (reads every byte).
    """
    root = Path(root)
    report = CheckReport(root=str(root))
    try:
        index = DatasetIndex.load(root)
    except DatasetError as error:
        report.problems.append(Problem(INDEX_NAME, str(error)))
        return report
    report.episodes_listed = len(index.episodes)
    seen: set[tuple[str, int]] = set()
    listed_files: set[str] = set()
    for entry in index.episodes:
        listed_files.add(entry.file)
        key = (entry.task, entry.seed)
        if key in seen:
            report.problems.append(Problem(entry.file, f"index lists ({entry.task}, seed {entry.seed}) twice"))
            continue
        seen.add(key)
        reason = _check_entry(root, entry, checksums)
        if reason:
            report.problems.append(Problem(entry.file, reason))
        else:
            report.episodes_ok += 1
    episodes_dir = root / EPISODES_DIR
    if episodes_dir.exists():
        for path in sorted(episodes_dir.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            if path.name.endswith(TMP_SUFFIX):
                report.problems.append(Problem(relative, "partial file left by an interrupted write (safe to delete)"))
            elif relative not in listed_files:
                report.problems.append(Problem(relative, f"not listed in {INDEX_NAME}"))
    return report


def _check_entry(root: Path, entry, checksums: bool) -> str | None:  # noqa: ANN001
    """Why the indexed episode is bad, or None when it is fine."""
    path = root / entry.file
    if not path.is_file():
        return "listed in the index but missing on disk"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"size {size} bytes differs from the index ({entry.bytes}); the file is truncated or was replaced"
    if checksums and file_sha256(path) != entry.sha256:
        return "SHA-256 differs from the index; the file is corrupt"
    try:
        validate_episode(path)
        with h5py.File(path, "r") as f:
            task, seed = str(f.attrs["task"]), int(f.attrs["seed"])
            keyframes = [int(k) for k in f["keyframes"][()]]
            cameras = json.loads(f.attrs["cameras"])
    except CorruptEpisodeError as error:
        return str(error)
    if (task, seed) != (entry.task, entry.seed):
        return f"file holds ({task}, seed {seed}) but the index says ({entry.task}, seed {entry.seed})"
    if keyframes != entry.keyframes:
        return f"keyframes {keyframes} differ from the index {entry.keyframes}"
    if not cameras:
        return "episode has no cameras"
    return None
