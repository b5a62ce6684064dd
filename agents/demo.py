"""The main job on the embedded default (``cortico demo``).

For now it shows the foundation end to end: collect expert demonstrations on two tasks with four
calibrated RGB-D cameras, validate the dataset, and write a contact sheet and a video of one episode.
The agent issue replaces it with the full perceive-remember-act demonstration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cortico.envs.dataset.check import check_dataset
from cortico.envs.dataset.collect import CollectionConfig, collect_demos
from cortico.envs.dataset.episode_file import read_episode
from cortico.envs.dataset.index import INDEX_NAME, DatasetError, DatasetIndex
from cortico.envs.task_catalog import resolve_tasks
from cortico.envs.visualize import contact_sheet, episode_frames, write_image, write_video

DEFAULT_TASKS = ("drawer-open", "pick-place")


@dataclass(frozen=True)
class DemoOutputs:
    """Files the demo wrote."""

    dataset: Path
    contact_sheet: Path
    video: Path


def run_demo(
    out: str | Path = "runs/demo",
    *,
    tasks: tuple[str, ...] = DEFAULT_TASKS,
    episodes_per_task: int = 2,
    image_size: int = 128,
    video_suffix: str = ".mp4",
    fresh: bool = False,
) -> DemoOutputs:
    """Collect demos, check them, and draw one episode; re-running continues an existing demo dataset."""
    out = Path(out)
    dataset = out / "dataset"
    config = CollectionConfig(episodes_per_task=episodes_per_task, image_size=image_size)
    resume = (dataset / INDEX_NAME).exists() and not fresh
    summary = collect_demos(dataset, resolve_tasks(tasks=list(tasks)), config, resume=resume, overwrite=fresh)
    if summary.short_tasks:
        raise DatasetError(f"the experts failed too often on {summary.short_tasks}; see {dataset}/index.json")
    report = check_dataset(dataset)
    if not report.ok:
        raise DatasetError(f"the demo dataset failed its check: {report.problems}")
    index = DatasetIndex.load(dataset)
    record = read_episode(dataset / index.episodes[-1].file)
    sheet = write_image(out / "contact_sheet.png", contact_sheet(record))
    video = write_video(out / f"episode{video_suffix}", episode_frames(record))
    return DemoOutputs(dataset=dataset, contact_sheet=sheet, video=video)
