"""Side-by-side benchmark of the keyframe policies on MT10: same demos, same budget, same held-out seeds.

    .venv/bin/python benchmarks/policy_suite.py                 # -> benchmarks/results/policy_suite.json
    .venv/bin/python benchmarks/policy_suite.py --quick         # a smoke run (minutes)

Collects expert demos once, trains the gaze model once, trains every policy with identical steps, batch
size and seed, evaluates all of them on the same evaluation seeds (disjoint from the demos), and times
``act()`` per decision. Every stage resumes from what is already in ``--workdir``. Results for policies
not trained in this run are kept from an existing ``--json`` made with the same comparison settings, so the
policies can be trained in separate sessions (``--policies rvt,cnn`` after ``--policies cortical``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="mt10")
    parser.add_argument("--policies", default="cortical,rvt,cnn")
    parser.add_argument("--episodes-per-task", type=int, default=10, help="demos per task")
    parser.add_argument("--image-size", type=int, default=96, help="camera image size")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per policy")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="peak learning rate of every policy (default: TrainConfig's)"
    )
    parser.add_argument("--sample-steps", default="keyframes", choices=("all", "keyframes"))
    parser.add_argument(
        "--balance-tasks", action="store_true",
        help="draw every task equally often instead of every sample (measured worse on MT10, BENCHMARKS.md)",
    )  # fmt: skip
    parser.add_argument(
        "--augment", action="store_true",
        help="train with each policy's augmentation (SE(3) scene motion, image shifts); off by default: at this "
        "budget it costs accuracy (BENCHMARKS.md)",
    )  # fmt: skip
    parser.add_argument("--gaze-steps", type=int, default=1000)
    parser.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per task")
    parser.add_argument("--eval-workers", type=int, default=2, help="Ray workers running evaluation episodes")
    parser.add_argument("--keyframe-budget", type=int, default=15)
    parser.add_argument("--text-model", default="minilm", help="text encoder for every policy")
    parser.add_argument("--policy-config", default="{}", help="JSON settings applied to every policy")
    parser.add_argument(
        "--seed", type=int, default=0,
        help="training seed of every policy (initial weights, batches); demos, gaze model and evaluation seeds "
        "stay the same. A seed other than 0 trains into WORKDIR/<policy>_seed<N>",
    )  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", type=Path, default=Path("runs/policy_suite"))
    parser.add_argument("--quick", action="store_true", help="2 tasks, 2 demos, 30 steps, 1 episode: a smoke run")
    parser.add_argument("--json", type=Path, default=RESULTS / "policy_suite.json")
    args = parser.parse_args()
    if args.quick:
        args.suite, args.episodes_per_task, args.steps, args.eval_episodes = "quick", 2, 30, 1
        args.gaze_steps, args.image_size, args.batch_size = 30, 64, 4
        if args.json == RESULTS / "policy_suite.json":
            args.json = args.workdir / "policy_suite_quick.json"
    return args


COMPARISON_SETTINGS = (
    "suite", "episodes_per_task", "image_size", "steps", "batch_size", "learning_rate", "sample_steps",
    "balance_tasks", "augment", "gaze_steps", "eval_episodes", "keyframe_budget", "text_model", "policy_config", "seed",
)  # fmt: skip
# settings added later: results written before them used these values (learning rate None: TrainConfig's)
SETTING_DEFAULTS = {"seed": 0, "learning_rate": None}


def policy_overrides(kind: str, args: argparse.Namespace) -> dict[str, object]:
    """A policy's settings in this comparison: the text model, then its entry of --policy-config."""
    return {"text_model": args.text_model, **json.loads(args.policy_config).get(kind, {})}


def earlier_results(path: Path, settings: dict, policies: list[str]) -> dict[str, object]:
    """Policy results from an earlier run with the same comparison settings, minus those retrained now."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    old = earlier.get("settings", {})
    if any(old.get(key, SETTING_DEFAULTS.get(key)) != settings[key] for key in COMPARISON_SETTINGS):
        print(f"{path}: earlier results use other settings; they are replaced")
        return {}
    known = [kind for kind in old.get("policies", "").split(",") if kind in earlier and kind not in policies]
    return {kind: earlier[kind] for kind in known}


def main() -> int:
    args = parse_args()
    import torch

    from cortico.atomic import write_json_atomic
    from cortico.envs.dataset.collect import CollectionConfig, collect_into_cache
    from cortico.envs.dataset.index import software_versions
    from cortico.envs.metaworld_backend import MetaWorldEnv
    from cortico.envs.task_catalog import suite_tasks
    from cortico.perception.gaze_training import GazeTrainConfig, train_gaze
    from cortico.policies.evaluation import evaluate_policy, write_report
    from cortico.policies.training import TrainConfig, load_policy, train_policy

    tasks = ["drawer-open", "button-press-topdown"] if args.suite == "quick" else list(suite_tasks(args.suite))
    workdir = args.workdir
    data = workdir / "demos"
    started = time.perf_counter()
    config = CollectionConfig(episodes_per_task=args.episodes_per_task, image_size=args.image_size)
    collection = collect_into_cache(data, tasks, config, elsewhere="pass another --workdir")
    results: dict[str, object] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "software": software_versions(),
        "device": str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() and args.device != "cpu" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "tasks": tasks,
        "collection_seconds": collection.seconds,
    }

    gaze_run = workdir / "gaze"
    if not (gaze_run / "model" / "config.json").exists():
        gaze_config = GazeTrainConfig(steps=args.gaze_steps, text_model=args.text_model)
        gaze_metrics = train_gaze(data, gaze_run, gaze_config, resume=gaze_run.exists())
        results["gaze_validation"] = gaze_metrics["validation"]

    policies = args.policies.split(",")
    kept = earlier_results(args.json, results["settings"], policies)
    if "gaze_validation" not in results and args.json.exists() and kept:
        results["gaze_validation"] = json.loads(args.json.read_text()).get("gaze_validation")
    results.update(kept)
    results["settings"]["policies"] = ",".join([*kept, *policies])
    for kind in policies:
        run = workdir / (kind if args.seed == 0 else f"{kind}_seed{args.seed}")
        train = TrainConfig(
            policy=kind, seed=args.seed, steps=args.steps, batch_size=args.batch_size, sample_steps=args.sample_steps,
            balance_tasks=args.balance_tasks, augment=args.augment, gaze_model=str(gaze_run / "model"),
            policy_overrides=policy_overrides(kind, args), device=args.device, checkpoint_every=max(args.steps // 4, 1),
            **({} if args.learning_rate is None else {"learning_rate": args.learning_rate}),
        )  # fmt: skip
        summary = train_policy(data, run, train, resume=run.exists())
        policy = load_policy(run)
        if args.device != "cpu" and torch.cuda.is_available():
            policy = policy.to("cuda")
        report = evaluate_policy(
            policy, tasks, args.eval_episodes, keyframe_budget=args.keyframe_budget, workers=args.eval_workers,
            checkpoint=run, episodes_file=run / "eval" / "episodes.jsonl",
        )  # fmt: skip
        write_report(report, run / "eval" / "report.json", title=f"{kind} on {args.suite}")
        results[kind] = {
            "train_seconds": summary["seconds"],
            "final_losses": summary["final_losses"],
            "parameters": sum(p.numel() for p in policy.parameters() if p.requires_grad),
            "evaluation": report.summary(),
            "per_task": {
                t: {k: row[k] for k in ("success_rate", "wilson95", "mean_keyframes")}
                for t, row in report.per_task().items()
            },  # fmt: skip
            "act_ms_one_thread": _time_act(policy, tasks[0], args.image_size, MetaWorldEnv),
        }
        write_json_atomic(args.json, results)
    results["total_seconds"] = time.perf_counter() - started
    write_json_atomic(args.json, results)
    print(json.dumps({k: v for k, v in results.items() if k not in ("software", "settings")}, indent=2, default=str))
    return 0


def _time_act(policy, task: str, image_size: int, env_class) -> float:  # noqa: ANN001
    """Median milliseconds of ``act()`` (perception included) on one thread, after a warm-up."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = env_class(task, cameras=policy.config.cameras, image_size=image_size)
    observation = env.reset(seed=123)
    env.close()
    policy.act(observation)
    samples = []
    for _ in range(10):
        begun = time.perf_counter()
        policy.act(observation)
        samples.append(1000 * (time.perf_counter() - begun))
    torch.set_num_threads(threads)
    return sorted(samples)[len(samples) // 2]


if __name__ == "__main__":
    sys.exit(main())
