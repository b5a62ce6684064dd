"""Commands of the environment folder: ``envs list``, ``collect``, ``dataset info|check`` and ``view``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cortico.ray_runtime import add_ray_arguments, format_worker_summary, ray_options


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    envs = subparsers.add_parser("envs", help="list the embedded tasks, suites and instructions")
    envs_sub = envs.add_subparsers(dest="envs_command", metavar="SUBCOMMAND")
    listing = envs_sub.add_parser("list", help="list tasks (task, suites, instructions)")
    listing.add_argument("--suite", help="only the tasks of this suite (mt10, mt25, mt50, ml10-train, ml10-test)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_envs_list)
    envs.set_defaults(handler=lambda args: envs.print_help() or 2)

    collect = subparsers.add_parser(
        "collect",
        help="collect expert demonstrations into a dataset directory",
        description="Run the scripted experts on the embedded suite and store successful demonstrations "
        "(multi-view RGB-D, proprioception, keyframes) as one HDF5 file per episode plus index.json.",
    )
    which = collect.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help="a named suite, e.g. mt10")
    which.add_argument("--tasks", help="comma-separated task names, e.g. drawer-open,pick-place")
    collect.add_argument("--episodes-per-task", type=int, required=True, help="successful demos per task")
    collect.add_argument("--out", required=True, help="dataset directory")
    collect.add_argument("--image-size", type=int, default=128, help="square image size in pixels (default 128)")
    collect.add_argument("--cameras", help="comma-separated cameras (default front,left_shoulder,right_shoulder,wrist)")
    collect.add_argument(
        "--store",
        choices=("all", "keyframes"),
        default="all",
        help="store every step's images (default) or only the first step and keyframes",
    )
    collect.add_argument("--seed", type=int, default=0, help="base seed; task seeds are seed*10000 + attempt")
    mode = collect.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue an interrupted collection in --out")
    mode.add_argument("--overwrite", action="store_true", help="replace the dataset in --out")
    collect.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    add_ray_arguments(collect, "collection")
    collect.set_defaults(handler=_collect)

    dataset = subparsers.add_parser("dataset", help="inspect or validate a demonstration dataset")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    info = dataset_sub.add_parser("info", help="episodes, keyframes and per-task counts")
    info.add_argument("dir", help="dataset directory")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=_dataset_info)
    check = dataset_sub.add_parser("check", help="find corrupt, partial or unlisted files (exit 1 if any)")
    check.add_argument("dir", help="dataset directory")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--no-checksums", action="store_true", help="skip the SHA-256 comparison (faster)")
    check.set_defaults(handler=_dataset_check)
    dataset.set_defaults(handler=lambda args: dataset.print_help() or 2)

    view = subparsers.add_parser("view", help="contact sheet (PNG) or video (MP4/GIF) of one episode")
    view.add_argument("dir", help="dataset directory")
    view.add_argument("--episode", type=int, default=0, help="episode number in the index (default 0)")
    view.add_argument("--out", required=True, help="output file: .png/.jpg for a contact sheet, .mp4/.gif for a video")
    view.add_argument("--fps", type=float, default=20.0, help="video frame rate")
    view.set_defaults(handler=_view)


def _envs_list(args: argparse.Namespace) -> int:
    from cortico.envs.task_catalog import TASKS, suite_tasks, suites_of

    names = list(suite_tasks(args.suite)) if args.suite else list(TASKS)
    rows = [
        {
            "task": n,
            "suites": suites_of(n),
            "objects": list(TASKS[n].objects),
            "instructions": list(TASKS[n].instructions),
        }
        for n in names
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["task"]) for r in rows)
    for row in rows:
        print(f"{row['task']:<{width}}  [{', '.join(row['suites'])}]")
        for instruction in row["instructions"]:
            print(f"{'':<{width}}    - {instruction}")
    print(f"{len(rows)} tasks")
    return 0


def _collect(args: argparse.Namespace) -> int:
    from cortico.envs.cameras import resolve_cameras
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos
    from cortico.envs.task_catalog import resolve_tasks

    tasks = resolve_tasks(suite=args.suite, tasks=None if args.suite else args.tasks)
    config = CollectionConfig(
        episodes_per_task=args.episodes_per_task,
        cameras=resolve_cameras(args.cameras),
        image_size=args.image_size,
        store=args.store,
        seed=args.seed,
    )
    summary = collect_demos(
        Path(args.out), tasks, config, resume=args.resume, overwrite=args.overwrite, workers=args.workers,
        ray=ray_options(args),
    )  # fmt: skip
    new = sum(summary.collected.values())
    failures = sum(summary.failures.values())
    print(
        f"collected {new} new episodes ({summary.skipped_existing} already there) for {len(tasks)} tasks "
        f"in {summary.seconds:.1f} s ({summary.episodes_per_minute:.1f} episodes/min); "
        f"expert failures: {failures}"
    )
    for task, count in summary.failures.items():
        print(f"  {task}: {count} failed expert attempt(s) (not stored)")
    if summary.workers:
        print(format_worker_summary(summary.workers))
    if args.json:
        from cortico.atomic import write_json_atomic

        write_json_atomic(args.json, summary.to_dict())
    if summary.short_tasks:
        print(f"warning: fewer episodes than requested for: {', '.join(summary.short_tasks)}", file=sys.stderr)
        return 1
    print(f"dataset: {args.out}")
    return 0


def _dataset_info(args: argparse.Namespace) -> int:
    from cortico.envs.dataset.index import DatasetIndex

    index = DatasetIndex.load(args.dir)
    per_task = index.per_task()
    info = {
        "dir": args.dir,
        "episodes": len(index.episodes),
        "keyframes": sum(len(e.keyframes) for e in index.episodes),
        "frames": sum(e.num_frames for e in index.episodes),
        "failures": len(index.failures),
        "bytes": sum(e.bytes for e in index.episodes),
        "collection": index.collection,
        "software": index.software,
        "tasks": per_task,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    signature = index.collection.get("signature", {})
    print(f"dataset {args.dir}")
    print(
        f"  episodes {info['episodes']}, keyframes {info['keyframes']}, frames {info['frames']}, "
        f"expert failures {info['failures']}, {info['bytes'] / 1e6:.1f} MB"
    )
    print(
        f"  cameras {', '.join(signature.get('cameras', []))} at {signature.get('image_size')} px, "
        f"store={signature.get('store')}, backend={signature.get('backend')}"
    )
    width = max((len(t) for t in per_task), default=4)
    print(f"  {'task':<{width}}  episodes  keyframes  failures")
    for task, row in per_task.items():
        print(f"  {task:<{width}}  {row['episodes']:>8}  {row['keyframes']:>9}  {row['failures']:>8}")
    return 0


def _dataset_check(args: argparse.Namespace) -> int:
    from cortico.envs.dataset.check import check_dataset

    report = check_dataset(args.dir, checksums=not args.no_checksums)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{report.episodes_ok}/{report.episodes_listed} listed episodes are valid in {args.dir}")
        for problem in report.problems:
            print(f"  BAD {problem.file}: {problem.reason}")
        print("OK" if report.ok else f"{len(report.problems)} problem(s) found")
    return 0 if report.ok else 1


def _view(args: argparse.Namespace) -> int:
    from cortico.envs.dataset.episode_file import read_episode
    from cortico.envs.dataset.index import DatasetIndex
    from cortico.envs.visualize import (
        IMAGE_SUFFIXES,
        VIDEO_SUFFIXES,
        contact_sheet,
        episode_frames,
        write_image,
        write_video,
    )

    index = DatasetIndex.load(args.dir)
    if not 0 <= args.episode < len(index.episodes):
        raise ValueError(
            f"episode {args.episode} does not exist; the dataset has episodes 0..{len(index.episodes) - 1}"
        )
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise ValueError(f"--out must end in one of {IMAGE_SUFFIXES + VIDEO_SUFFIXES}, got {out.name!r}")
    record = read_episode(Path(args.dir) / index.episodes[args.episode].file)
    if suffix in IMAGE_SUFFIXES:
        write_image(out, contact_sheet(record))
    else:
        write_video(out, episode_frames(record), fps=args.fps)
    print(f"wrote {out}")
    return 0
