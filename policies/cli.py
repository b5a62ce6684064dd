"""Commands of the policies folder: ``train`` and ``eval``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cortico.ray_runtime import add_ray_arguments, format_worker_summary, ray_options


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register this folder's sub-commands."""
    train = subparsers.add_parser(
        "train",
        help="train a keyframe policy (cortical, rvt, cnn) on a demo dataset",
        description="Train a language-conditioned keyframe policy; checkpoints go to RUN/checkpoints/<step>|last.",
    )
    train.add_argument("--policy", default="cortical", help="policy type: cortical, rvt or cnn")
    train.add_argument("--data", required=True, help="demo dataset directory")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--steps", type=int, help="optimisation steps (default 3000)")
    train.add_argument("--batch-size", type=int, help="samples per step (default 16)")
    train.add_argument("--learning-rate", type=float, help="peak learning rate (default 5e-4)")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--config", help='JSON file: {"train": {...}, "policy": {...}} settings')
    train.add_argument(
        "--no-augment", dest="augment", action="store_false", default=None,
        help="train without augmentation: learns faster on short (CPU) budgets of a few thousand steps",
    )  # fmt: skip
    train.add_argument(
        "--balance-tasks", action="store_true", default=None,
        help="draw every task equally often instead of every sample (measured worse on MT10, BENCHMARKS.md)",
    )  # fmt: skip
    train.add_argument("--gaze", help="trained gaze model directory (cortical; default: train one first)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--use-gpu", action="store_true", help="one GPU per Ray Train worker (--workers > 1)")
    add_ray_arguments(train, "data-parallel training")
    train.set_defaults(handler=_train)

    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate a policy on the embedded suite (success with Wilson intervals)",
        description="Roll a trained policy out on held-out seeds; writes JSON, a markdown table and a bar plot.",
    )
    evaluate.add_argument("--checkpoint", required=True, help="run directory, checkpoint or pretrained_model")
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument("--suite", help="a named suite (default: the tasks the policy was trained on)")
    which.add_argument("--tasks", help="comma-separated tasks")
    evaluate.add_argument("--episodes-per-task", type=int, default=10)
    evaluate.add_argument("--keyframe-budget", type=int, default=15, help="keyframes allowed per episode")
    evaluate.add_argument("--seed", type=int, default=0, help="evaluation seed base (seeds are >= 1,000,000)")
    evaluate.add_argument("--json", help="report file (default: CHECKPOINT/eval/report.json)")
    evaluate.add_argument("--video", help="write one rollout video per task into this directory")
    evaluate.add_argument("--resume", action="store_true", help="keep the episodes an interrupted evaluation finished")
    evaluate.add_argument(
        "--inference", metavar="JSON",
        help='inference settings changed on the trained weights, e.g. \'{"fine_weight": 1.0}\' (cortical: '
        "gaze_focus, fine_weight); recorded in the report",
    )  # fmt: skip
    evaluate.add_argument(
        "--controller", metavar="JSON",
        help='keyframe controller settings, e.g. \'{"detour_clearance": 0}\' for straight moves only (the '
        "controller before 2026-12-05); recorded in the report",
    )  # fmt: skip
    add_ray_arguments(evaluate, "evaluation")
    evaluate.set_defaults(handler=_eval)


def _train(args: argparse.Namespace) -> int:
    from cortico.policies.training import TrainConfig, train_policy

    settings: dict = {}
    policy_settings: dict = {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read --config {args.config}: {error}") from error
        unknown = sorted(set(raw) - {"train", "policy"})
        if unknown or not isinstance(raw.get("train", {}), dict) or not isinstance(raw.get("policy", {}), dict):
            raise ValueError(f'--config must be {{"train": {{...}}, "policy": {{...}}}}; unexpected keys {unknown}')
        settings, policy_settings = dict(raw.get("train", {})), dict(raw.get("policy", {}))
    for key in ("steps", "batch_size", "learning_rate", "seed", "augment", "balance_tasks"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.gaze:
        settings["gaze_model"] = args.gaze
    try:
        config = TrainConfig(policy=args.policy, policy_overrides=policy_settings, **settings)
    except TypeError as error:
        raise ValueError(f"invalid training settings in --config: {error}") from error
    if args.workers > 1:
        from cortico.policies.distributed import train_policy_distributed

        summary = train_policy_distributed(args.data, args.out, config, workers=args.workers, use_gpu=args.use_gpu,
                                           resume=args.resume, ray=ray_options(args))  # fmt: skip
        print(f"{summary['workers']} Ray Train workers, {summary['samples_per_second']:.1f} samples/s")
    elif args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    else:
        summary = train_policy(args.data, args.out, config, resume=args.resume)
    print(f"trained {args.policy} for {summary['steps']} steps in {summary['seconds']:.0f} s; "
          f"final loss {summary['final_losses'].get('total', float('nan')):.3f}")  # fmt: skip
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


def _json_object(flag: str, text: str) -> dict:
    """Parse a flag's JSON object, naming the flag and what is accepted when it is not one."""
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{flag} must be a JSON object such as '{{\"name\": 1.0}}' ({error})") from error
    if not isinstance(settings, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return settings


def _eval(args: argparse.Namespace) -> int:
    from cortico.envs.task_catalog import resolve_tasks
    from cortico.policies.evaluation import evaluate_policy, write_report
    from cortico.policies.training import load_policy

    policy = load_policy(args.checkpoint)
    if args.inference:
        policy.config = policy.config.with_inference_settings(_json_object("--inference", args.inference))
    controller = _json_object("--controller", args.controller) if args.controller else None
    if args.suite or args.tasks:
        tasks = resolve_tasks(suite=args.suite, tasks=None if args.suite else args.tasks)
    elif policy.config.tasks:
        tasks = list(policy.config.tasks)
    else:
        raise ValueError("the checkpoint does not record its tasks; pass --suite or --tasks")
    target = Path(args.json) if args.json else Path(args.checkpoint) / "eval" / "report.json"
    episodes_file = target.with_name(target.stem + ".episodes.jsonl")
    if not args.resume and episodes_file.exists():
        episodes_file.unlink()  # a fresh evaluation
    report = evaluate_policy(
        policy, tasks, args.episodes_per_task, seed=args.seed, keyframe_budget=args.keyframe_budget,
        video_dir=args.video, workers=args.workers, checkpoint=args.checkpoint, ray=ray_options(args),
        episodes_file=episodes_file, controller=controller,
    )  # fmt: skip
    files = write_report(report, target, title=f"{policy.config.type} on {len(tasks)} tasks")
    print(report.markdown())
    for untrained in report.untrained_tasks:
        print(f"note: the policy was not trained on {untrained!r}")
    if report.workers:
        print(format_worker_summary(report.workers))
    print(f"report: {files['json']} (table {files['markdown'].name}, plot {files['plot'].name})")
    return 0
