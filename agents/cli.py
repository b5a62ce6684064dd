"""Commands of the agents folder: ``demo`` (the main job)."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    demo = subparsers.add_parser(
        "demo",
        help="the main job on the embedded default: collect demos, validate, draw an episode",
        description="Collect expert demonstrations on two tasks with four RGB-D cameras, check the dataset, "
        "and write a contact sheet (PNG) and a video (MP4 or GIF) of one episode.",
    )
    demo.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    demo.add_argument("--tasks", default="drawer-open,pick-place", help="comma-separated tasks")
    demo.add_argument("--episodes-per-task", type=int, default=2, help="demos per task (default 2)")
    demo.add_argument("--image-size", type=int, default=128, help="square image size (default 128)")
    demo.add_argument("--gif", action="store_true", help="write the video as an animated GIF instead of MP4")
    demo.add_argument("--fresh", action="store_true", help="discard an earlier demo dataset in --out")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from cortico.agents.demo import run_demo
    from cortico.envs.task_catalog import resolve_tasks

    outputs = run_demo(
        args.out,
        tasks=tuple(resolve_tasks(tasks=args.tasks)),
        episodes_per_task=args.episodes_per_task,
        image_size=args.image_size,
        video_suffix=".gif" if args.gif else ".mp4",
        fresh=args.fresh,
    )
    print(f"dataset:       {outputs.dataset}")
    print(f"contact sheet: {outputs.contact_sheet}")
    print(f"video:         {outputs.video}")
    return 0
