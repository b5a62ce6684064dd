"""Keyframe training samples as torch tensors: the observation at step t and the next keyframe's action.

Sampling follows PerAct/RVT: by default a sample is taken at the first step and at every keyframe but
the last, each paired with the following keyframe's action. ``sample_steps="all"`` uses every stored
frame before the last keyframe (more, correlated samples), which needs a dataset stored with all steps.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from cortico.envs.camera_geometry import depth_to_points
from cortico.envs.dataset.episode_file import CorruptEpisodeError
from cortico.envs.dataset.index import DatasetError, DatasetIndex

SAMPLE_MODES = ("keyframes", "all")


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives: episode, stored frame, its step and the target keyframe."""

    episode: int
    frame: int
    step: int
    target_step: int
    action: np.ndarray  # (9,)


class KeyframeDataset(Dataset):
    """Keyframe samples of a cortico demonstration dataset.

    Args:
        root: dataset directory (with ``index.json``).
        tasks: keep only these tasks (default: all).
        cameras: cameras to load, in this order (default: all of the dataset's).
        sample_steps: ``"keyframes"`` or ``"all"`` (see module doc).
        cache_mb: keep up to this many megabytes of decoded samples in memory (0: none). A training run
            draws each keyframe sample dozens of times; reading and unprojecting it from HDF5 costs ~17 ms
            each time. Samples are cached as first read until the budget is full (uniform draws make that
            as good as evicting); every read returns fresh tensors, so a caller may change them.

    Each item is a dict: ``rgb`` ``(V, H, W, 3)`` uint8, ``depth`` ``(V, H, W)``, ``points``
    ``(V, H, W, 3)``, ``intrinsics`` ``(V, 3, 3)``, ``extrinsics`` ``(V, 4, 4)`` (float32), ``gripper_pose``
    ``(7,)``, ``gripper_open`` ``()``, ``joint_positions`` ``(J,)``, ``time`` ``()``, ``action`` ``(9,)`` (the
    next keyframe), and ``instruction``, ``task`` (str), ``episode``, ``step``, ``target_step`` (int).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        tasks: list[str] | None = None,
        cameras: list[str] | tuple[str, ...] | None = None,
        sample_steps: str = "keyframes",
        cache_mb: float = 0.0,
    ) -> None:
        if sample_steps not in SAMPLE_MODES:
            raise ValueError(f"sample_steps must be one of {SAMPLE_MODES}, got {sample_steps!r}")
        if not cache_mb >= 0:
            raise ValueError(f"cache_mb must be >= 0 megabytes (0 turns the cache off), got {cache_mb}")
        self.root = Path(root)
        self.index = DatasetIndex.load(self.root)
        available = list(self.index.collection["signature"]["cameras"])
        self.cameras = tuple(cameras) if cameras is not None else tuple(available)
        unknown = [c for c in self.cameras if c not in available]
        if unknown:
            raise DatasetError(f"cameras {unknown} are not in this dataset; it has: {', '.join(available)}")
        self.episodes = [e for e in self.index.episodes if tasks is None or e.task in tasks]
        if tasks is not None:
            missing = sorted(set(tasks) - {e.task for e in self.episodes})
            if missing:
                raise DatasetError(f"no episodes of tasks {missing} in {self.root}")
        self.samples = [ref for i in range(len(self.episodes)) for ref in self._episode_samples(i, sample_steps)]
        if not self.samples:
            raise DatasetError(f"{self.root} has no keyframe samples (no episodes with keyframes)")
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()
        self._task_weights: np.ndarray | None = None
        self._cache: dict[int, dict[str, Any]] = {}
        self._cache_budget = int(cache_mb * 2**20)
        self._cache_bytes = 0

    def _episode_samples(self, episode: int, mode: str) -> list[SampleRef]:
        entry = self.episodes[episode]
        path = self.root / entry.file
        try:
            with h5py.File(path, "r") as f:
                keyframes = f["keyframes"][()]
                actions = f["keyframe_actions"][()]
                frame_steps = f["frames/step"][()]
        except (OSError, KeyError) as error:
            raise CorruptEpisodeError(
                f"{path}: cannot read keyframes ({error}); run 'cortico dataset check'"
            ) from error
        if len(keyframes) == 0:
            return []
        frame_of_step = {int(step): i for i, step in enumerate(frame_steps)}
        if mode == "keyframes":
            steps = [0, *keyframes[:-1].tolist()]
        else:
            steps = [int(s) for s in frame_steps if s < keyframes[-1]]
        refs = []
        for step in steps:
            if step not in frame_of_step:
                raise DatasetError(
                    f"{path}: no stored image at step {step}; collect with --store all for sample_steps='all'"
                )
            target = int(np.searchsorted(keyframes, step, side="right"))
            refs.append(SampleRef(episode, frame_of_step[step], step, int(keyframes[target]), actions[target]))
        return refs

    def __len__(self) -> int:
        return len(self.samples)

    def task_balanced_weights(self) -> np.ndarray:
        """Sampling weight of each sample so that every task is drawn equally often, whatever its keyframes.

        Tasks differ in keyframes per demo (reach 1, door-open 8): uniform sampling gives reach 2% of the
        batches of MT10. These weights give each task ``1 / tasks`` of the draws (computed once: the
        training loop asks every step).
        """
        if self._task_weights is None:
            tasks = [self.episodes[ref.episode].task for ref in self.samples]
            counts = Counter(tasks)
            weights = np.array([1.0 / (len(counts) * counts[t]) for t in tasks])
            self._task_weights = weights / weights.sum()
        return self._task_weights

    def _file(self, episode: int) -> h5py.File:
        if os.getpid() != self._pid:  # a DataLoader worker: never share HDF5 handles across processes
            self._files, self._pid = {}, os.getpid()
        if episode not in self._files:
            self._files[episode] = h5py.File(self.root / self.episodes[episode].file, "r")
        return self._files[episode]

    def __getitem__(self, item: int) -> dict[str, Any]:
        cached = self._cache.get(item)
        if cached is None:
            cached = self._read(item)
            size = sum(v.nbytes for v in cached.values() if isinstance(v, torch.Tensor))
            if self._cache_bytes + size > self._cache_budget:
                return cached
            self._cache[item] = cached
            self._cache_bytes += size
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in cached.items()}

    @property
    def cached_samples(self) -> int:
        """How many samples the memory cache holds."""
        return len(self._cache)

    def _read(self, item: int) -> dict[str, Any]:
        """One sample decoded from its episode file."""
        ref = self.samples[item]
        f = self._file(ref.episode)
        views: dict[str, list[np.ndarray]] = {"rgb": [], "depth": [], "points": [], "intrinsics": [], "extrinsics": []}
        for camera in self.cameras:
            group = f[f"frames/{camera}"]
            depth = group["depth"][ref.frame]
            intrinsics = group["intrinsics"][ref.frame]
            extrinsics = group["extrinsics"][ref.frame]
            views["rgb"].append(group["rgb"][ref.frame])
            views["depth"].append(depth)
            views["points"].append(depth_to_points(depth, intrinsics, extrinsics))
            views["intrinsics"].append(intrinsics.astype(np.float32))
            views["extrinsics"].append(extrinsics.astype(np.float32))
        steps = f["steps"]
        entry = self.episodes[ref.episode]
        sample: dict[str, Any] = {key: torch.from_numpy(np.stack(value)) for key, value in views.items()}
        sample.update(
            gripper_pose=torch.from_numpy(steps["gripper_pose"][ref.step].astype(np.float32)),
            gripper_open=torch.tensor(float(steps["gripper_open"][ref.step])),
            joint_positions=torch.from_numpy(steps["joint_positions"][ref.step].astype(np.float32)),
            time=torch.tensor(float(steps["time"][ref.step])),
            action=torch.from_numpy(np.asarray(ref.action, dtype=np.float32)),
            instruction=entry.instruction,
            task=entry.task,
            episode=ref.episode,
            step=ref.step,
            target_step=ref.target_step,
        )
        return sample

    def close(self) -> None:
        """Close open episode files."""
        for handle in self._files.values():
            handle.close()
        self._files = {}

    def describe(self) -> dict[str, Any]:
        """Summary for logs: samples, episodes, tasks, cameras."""
        return {
            "root": str(self.root),
            "samples": len(self),
            "episodes": len(self.episodes),
            "tasks": sorted({e.task for e in self.episodes}),
            "cameras": list(self.cameras),
            "collection": json.loads(json.dumps(self.index.collection)),
        }
