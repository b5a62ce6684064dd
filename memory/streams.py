"""Long camera streams made by chaining simulator episodes, with the ground truth questions are built from.

A stream is many demonstration episodes (different tasks, instructions, seeds) played one after another
as one continuous front-camera video, with a short pause between them. Every frame carries what the agent
knows about itself (its current instruction, its gripper command and where its gripper is) and, separately,
the simulator's ground truth (object, gripper and goal positions, keyframes) that only the question generator
reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cortico.envs.dataset.index import DatasetError, DatasetIndex

EPISODE_GAP = 1.0  # seconds between chained episodes


@dataclass
class StreamEpisode:
    """One episode inside a stream: its task, instruction and frame range ``[start, end)``."""

    task: str
    instruction: str
    seed: int
    start: int
    end: int
    keyframes: list[int]  # stream frame indices
    success_frame: int  # first frame at which the task succeeded


@dataclass
class Stream:
    """Frames ``(N, H, W, 3)`` and per-frame truth of a chained stream."""

    images: np.ndarray
    times: np.ndarray  # (N,) seconds
    episode: np.ndarray  # (N,) index into ``episodes``
    gripper_open: np.ndarray  # (N,)
    gripper: np.ndarray  # (N, 3) tool centre point
    object: np.ndarray  # (N, 3) task object
    goal: np.ndarray  # (N, 3)
    episodes: list[StreamEpisode] = field(default_factory=list)

    def __len__(self) -> int:
        return int(len(self.times))

    def facts(self, index: int) -> dict[str, Any]:
        """What the agent knows about itself at a frame (no privileged simulator state)."""
        number = int(self.episode[index])
        episode = self.episodes[number]
        return {
            "instruction": episode.instruction,
            "task_number": number,  # how many commands came before this one
            "task_time": float(self.times[index] - self.times[episode.start]),  # seconds since this command began
            "gripper_open": float(self.gripper_open[index]),
            # proprioception: the tool centre point from the arm's own joint readings (forward kinematics)
            "gripper_position": tuple(float(v) for v in self.gripper[index]),
            "success": bool(index >= episode.success_frame),
        }


def build_stream(root: str | Path, episodes: list[int], camera: str = "front", frame_stride: int = 2) -> Stream:
    """Chain the dataset's ``episodes`` (indices in its index) into one stream, keeping every n-th frame."""
    root = Path(root)
    index = DatasetIndex.load(root)
    if camera not in index.collection["signature"]["cameras"]:
        raise DatasetError(f"{root} has no {camera!r} camera; it has {index.collection['signature']['cameras']}")
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("images", "times", "episode", "gripper_open", "gripper", "object", "goal")
    }
    stream_episodes: list[StreamEpisode] = []
    offset_time, offset_frame = 0.0, 0
    for number, episode in enumerate(episodes):
        entry = index.episodes[episode]
        with h5py.File(root / entry.file, "r") as f:
            steps = f["frames/step"][()]
            if len(steps) != f["steps/time"].shape[0]:
                raise DatasetError(f"{entry.file} stores only some steps; streams need --store all")
            keep = np.arange(0, len(steps), frame_stride)
            time = f["steps/time"][()][keep]
            state = f["steps/state"][()][keep]
            images = f[f"frames/{camera}/rgb"][()][keep]
            pose = f["steps/gripper_pose"][()][keep]
            keyframes = f["keyframes"][()]
            grip = f["steps/gripper_open"][()][keep]
        count = len(keep)
        # the expert runs 10 steps past its first success (steps_after_success): success came at step T - 11
        success_step = max(0, len(steps) - 11)
        parts["images"].append(images)
        parts["times"].append(offset_time + time)
        parts["episode"].append(np.full(count, number))
        parts["gripper_open"].append(grip)
        parts["gripper"].append(pose[:, :3])
        parts["object"].append(state[:, 4:7])
        parts["goal"].append(state[:, 36:39])
        local_keyframes = sorted({int(min(count - 1, k // frame_stride)) for k in keyframes})
        stream_episodes.append(
            StreamEpisode(
                entry.task,
                entry.instruction,
                entry.seed,
                offset_frame,
                offset_frame + count,
                [offset_frame + k for k in local_keyframes],
                offset_frame + min(count - 1, success_step // frame_stride),
            )
        )
        offset_time += float(time[-1]) + EPISODE_GAP
        offset_frame += count
    return Stream(
        images=np.concatenate(parts["images"]),
        times=np.concatenate(parts["times"]).astype(np.float64),
        episode=np.concatenate(parts["episode"]).astype(np.int64),
        gripper_open=np.concatenate(parts["gripper_open"]).astype(np.float32),
        gripper=np.concatenate(parts["gripper"]),
        object=np.concatenate(parts["object"]),
        goal=np.concatenate(parts["goal"]),
        episodes=stream_episodes,
    )


def plan_streams(root: str | Path, streams: int, episodes_per_stream: int, seed: int) -> list[list[int]]:
    """Episode lists for ``streams`` streams: random tasks in random order, no episode used twice."""
    index = DatasetIndex.load(root)
    count = len(index.episodes)
    needed = streams * episodes_per_stream
    if needed > count:
        raise DatasetError(
            f"{streams} streams of {episodes_per_stream} episodes need {needed} episodes; {root} has {count}"
        )
    order = np.random.default_rng(seed).permutation(count)[:needed]
    return [order[i * episodes_per_stream : (i + 1) * episodes_per_stream].tolist() for i in range(streams)]


def plan_benchmark_streams(
    root: str | Path, train_streams: int, test_streams: int, episodes_per_stream: int, seed: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Training and held-out stream plans: test streams use episodes no training stream contains.

    Held-out streams never share an episode. Training streams chain random draws from the remaining
    episodes, each at most once per stream but possibly in several streams, so the reader sees many more
    task sequences ("what did you do before X") than the demos alone would chain.
    """
    count = len(DatasetIndex.load(root).episodes)
    held_out = test_streams * episodes_per_stream
    if held_out + episodes_per_stream > count:
        raise DatasetError(
            f"{test_streams} held-out streams of {episodes_per_stream} episodes plus one training stream need "
            f"{held_out + episodes_per_stream} episodes; {root} has {count}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(count)
    test = [order[i * episodes_per_stream : (i + 1) * episodes_per_stream].tolist() for i in range(test_streams)]
    pool = order[held_out:]
    train = [rng.choice(pool, size=episodes_per_stream, replace=False).tolist() for _ in range(train_streams)]
    return train, test
