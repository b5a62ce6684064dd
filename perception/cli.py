"""Commands of the perception folder: ``perception train-gaze``, ``eval-gaze`` and ``show``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    perception = subparsers.add_parser("perception", help="train and inspect percepts (gaze model, virtual views)")
    sub = perception.add_subparsers(dest="perception_command", metavar="SUBCOMMAND")
    perception.set_defaults(handler=lambda args: perception.print_help() or 2)

    train = sub.add_parser(
        "train-gaze",
        help="position-aware pretraining of the egocentric gaze model on a demo dataset",
        description="Train the gaze model to look where the next keyframe goes (and at the task object) in the "
        "wrist view; held-out episodes give the fixation error beside the centre-of-image baseline.",
    )
    train.add_argument("--data", required=True, help="demo dataset with the wrist camera")
    train.add_argument("--out", required=True, help="run directory (model/, checkpoints/, metrics.json)")
    train.add_argument("--steps", type=int, default=1500)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=2e-3)
    train.add_argument("--validation-fraction", type=float, default=0.2)
    train.add_argument("--frame-stride", type=int, default=1, help="use every n-th stored frame")
    train.add_argument("--width", type=int, default=24, help="channels of the first encoder stage")
    train.add_argument("--no-text", action="store_true", help="do not condition on the instruction")
    train.add_argument("--static-view", action="store_true", help="also read the front camera")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.set_defaults(handler=_train_gaze)

    evaluate = sub.add_parser("eval-gaze", help="fixation error and hit rates of a gaze model on a dataset")
    evaluate.add_argument("--model", required=True, help="a gaze model directory (RUN/model)")
    evaluate.add_argument("--data", required=True, help="demo dataset (all its episodes are evaluated)")
    evaluate.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    evaluate.set_defaults(handler=_eval_gaze)

    show = sub.add_parser("show", help="draw the virtual views and keypoints of one stored frame (PNG)")
    show.add_argument("dir", help="demo dataset")
    show.add_argument("--sample", type=int, default=0, help="keyframe sample number (default 0)")
    show.add_argument("--out", required=True, help="PNG file")
    show.add_argument("--views", default="top,front,left", help="virtual views")
    show.add_argument("--size", type=int, default=128, help="virtual view size")
    show.add_argument("--keypoints", type=int, default=32)
    show.add_argument("--workspace-low", type=float, nargs=3, metavar=("X", "Y", "Z"), help="workspace box corner")
    show.add_argument("--workspace-high", type=float, nargs=3, metavar=("X", "Y", "Z"), help="workspace box corner")
    show.set_defaults(handler=_show)


def _train_gaze(args: argparse.Namespace) -> int:
    from cortico.perception.gaze import GazeConfig
    from cortico.perception.gaze_training import GazeTrainConfig, train_gaze

    config = GazeTrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction,
        frame_stride=args.frame_stride,
        seed=args.seed,
        model=GazeConfig(width=args.width, text_dim=0 if args.no_text else 384, use_static_view=args.static_view),
    )
    metrics = train_gaze(args.data, args.out, config, resume=args.resume)
    _print_report(metrics["validation"])
    print(f"model: {Path(args.out) / 'model'}")
    return 0


def _eval_gaze(args: argparse.Namespace) -> int:
    from cortico.atomic import write_json_atomic
    from cortico.perception.gaze_training import evaluate_checkpoint

    report = evaluate_checkpoint(args.model, args.data)
    _print_report(report)
    if args.json:
        write_json_atomic(args.json, report)
    return 0


def _print_report(report: dict) -> None:
    print(
        f"{report['visible_targets']} of {report['samples']} frames have the target in view ({report['image_size']} px)"
    )
    for name in ("model", "centre_baseline"):
        row = report[name]
        hits = ", ".join(f"{k.removeprefix('hit_rate_')} {v:.2f}" for k, v in row.items() if k.startswith("hit_rate"))
        mean, median = row["pixel_error_mean"], row["pixel_error_median"]
        print(f"  {name:<16} mean error {mean:.2f} px, median {median:.2f} px, {hits}")


def _show(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
    from cortico.perception.pipeline import Perception, PerceptionConfig
    from cortico.perception.workspace import WorkspaceBounds

    dataset = KeyframeDataset(args.dir)
    if not 0 <= args.sample < len(dataset):
        raise ValueError(f"sample {args.sample} does not exist; the dataset has samples 0..{len(dataset) - 1}")
    sample = dataset[args.sample]
    batch = {k: (v[None] if torch.is_tensor(v) else [v]) for k, v in sample.items()}
    default = WorkspaceBounds()
    bounds = WorkspaceBounds(args.workspace_low or default.low, args.workspace_high or default.high)
    config = PerceptionConfig(
        views=tuple(args.views.split(",")), view_size=args.size, num_keypoints=args.keypoints, zoom=0, bounds=bounds
    )
    percept = Perception(config).perceive_batch(batch, dataset.cameras, torch.Generator().manual_seed(0))
    tiles = []
    virtual = [i for i, name in enumerate(percept.keypoint_views.view_names) if name.startswith("virtual:")]
    for v, column in enumerate(virtual):
        tile = Image.fromarray((percept.views.rgb[0, v].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        draw = ImageDraw.Draw(tile)
        for (u, w), seen in zip(
            percept.keypoint_views.pixels[0, column].tolist(), percept.keypoint_views.visible[0, column]
        ):
            color = (255, 255, 0) if seen else (90, 90, 90)
            draw.ellipse((u - 1.5, w - 1.5, u + 1.5, w + 1.5), outline=color)
        draw.text((2, 2), config.views[v], fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    from cortico.envs.visualize import write_image

    write_image(args.out, np.concatenate(tiles, axis=1))
    print(f"wrote {args.out} ({sample['task']}, step {sample['step']}: yellow keypoints are visible, grey hidden)")
    return 0
