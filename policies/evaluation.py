"""Closed-loop evaluation of a keyframe policy on the embedded suite, with confidence intervals.

Each episode resets a task with an evaluation seed (>= 1,000,000, never a demonstration seed), then asks
the policy for keyframes and executes them with the keyframe controller until success or the keyframe
budget is spent. Success per task carries a Wilson 95% interval.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cortico.atomic import write_json_atomic
from cortico.envs.dataset.collect import EVALUATION_SEED_OFFSET, SEEDS_PER_BASE
from cortico.envs.metaworld_backend import MetaWorldEnv
from cortico.policies.base import KeyframePolicy
from cortico.ray_runtime import RayOptions


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate (95% for ``z = 1.96``)."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z**2 / trials
    centre = (rate + z**2 / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z**2 / (4 * trials**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(
    first: dict[tuple[str, int], EpisodeResult], second: dict[tuple[str, int], EpisodeResult], z: float = 1.96
) -> dict[str, Any]:
    """Success of ``first`` minus ``second`` on the episodes (task, seed) both ran, with a 95% interval.

    The interval comes from the per-episode differences, so what the shared episodes have in common (an easy
    placement is easy for both policies) cancels: narrower than comparing two independent rates.
    """
    shared = sorted(set(first) & set(second))
    if not shared:
        raise ValueError("the two evaluations share no episode (task, seed): evaluate them on the same seeds")
    differences = np.array([float(first[key].success) - float(second[key].success) for key in shared])
    mean = float(differences.mean())
    half = z * float(differences.std(ddof=1)) / math.sqrt(len(shared)) if len(shared) > 1 else float("inf")
    return {
        "difference": mean,
        "ci95": [mean - half, mean + half],
        "episodes": len(shared),
        "only_first_succeeded": int((differences > 0).sum()),
        "only_second_succeeded": int((differences < 0).sum()),
    }


def evaluation_seed(seed: int, episode: int) -> int:
    """Seed of an evaluation episode (disjoint from every demonstration seed)."""
    return EVALUATION_SEED_OFFSET + seed * SEEDS_PER_BASE + episode


@dataclass
class EpisodeResult:
    """One evaluation episode.

    ``actions`` holds every keyframe the policy chose, as ``[x, y, z, gripper_open, ignore_collision]`` (metres,
    1 = open / ignore; episodes evaluated before 2026-12-05 lack the last), so failures can be traced and
    replayed afterwards (``benchmarks/policy_rollout_trace.py`` sets them beside the expert's).
    """

    task: str
    seed: int
    instruction: str
    success: bool
    keyframes: int
    decision_seconds: list[float] = field(default_factory=list)
    stop_reason: str = ""
    actions: list[list[float]] = field(default_factory=list)


@dataclass
class EvaluationReport:
    """Per-task and overall results."""

    episodes: list[EpisodeResult]
    keyframe_budget: int
    untrained_tasks: list[str]
    workers: list[dict[str, Any]] = field(default_factory=list)  # per-worker stats of a Ray evaluation
    inference: dict[str, Any] = field(default_factory=dict)  # the policy's inference settings (config)
    controller: dict[str, Any] = field(default_factory=dict)  # keyframe controller settings changed from defaults

    def per_task(self) -> dict[str, dict[str, Any]]:
        """Success rate, Wilson interval, keyframes used and decision time per task."""
        rows: dict[str, dict[str, Any]] = {}
        for task in dict.fromkeys(e.task for e in self.episodes):
            runs = [e for e in self.episodes if e.task == task]
            wins = sum(e.success for e in runs)
            low, high = wilson_interval(wins, len(runs))
            times = [t for e in runs for t in e.decision_seconds]
            rows[task] = {
                "episodes": len(runs),
                "successes": wins,
                "success_rate": wins / len(runs),
                "wilson95": [low, high],
                "mean_keyframes": statistics.mean(e.keyframes for e in runs),
                "mean_decision_ms": 1000 * statistics.mean(times) if times else float("nan"),
                "trained_on_task": task not in self.untrained_tasks,
            }
        return rows

    def summary(self) -> dict[str, Any]:
        """Mean success over tasks and overall figures."""
        rows = self.per_task()
        times = [t for e in self.episodes for t in e.decision_seconds]
        wins = sum(e.success for e in self.episodes)
        return {
            "mean_success": float(np.mean([r["success_rate"] for r in rows.values()])) if rows else 0.0,
            "episodes": len(self.episodes),
            "successes": wins,
            "wilson95_all_episodes": list(wilson_interval(wins, len(self.episodes))),
            "mean_keyframes": statistics.mean(e.keyframes for e in self.episodes) if self.episodes else 0.0,
            "median_decision_ms": 1000 * statistics.median(times) if times else float("nan"),
            "keyframe_budget": self.keyframe_budget,
            "untrained_tasks": self.untrained_tasks,
            "inference_settings": self.inference,
            "controller_settings": self.controller,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        episodes = [asdict(e) for e in self.episodes]
        return {"summary": self.summary(), "tasks": self.per_task(), "episodes": episodes, "workers": self.workers}

    def markdown(self) -> str:
        """A markdown table of the per-task results."""
        lines = ["| task | success | 95% Wilson | keyframes | ms/decision |", "|---|---|---|---|---|"]
        for task, row in self.per_task().items():
            flag = "" if row["trained_on_task"] else " (not trained on)"
            low, high = row["wilson95"]
            lines.append(
                f"| {task}{flag} | {row['successes']}/{row['episodes']} ({row['success_rate']:.0%}) | "
                f"{low:.2f}-{high:.2f} | {row['mean_keyframes']:.1f} | {row['mean_decision_ms']:.0f} |"
            )
        summary = self.summary()
        lines.append(f"| **mean** | **{summary['mean_success']:.1%}** | | {summary['mean_keyframes']:.1f} | "
                     f"{summary['median_decision_ms']:.0f} (median) |")  # fmt: skip
        return "\n".join(lines) + "\n"


def run_episode(
    policy: KeyframePolicy,
    env: MetaWorldEnv,
    seed: int,
    keyframe_budget: int,
    frames: list[np.ndarray] | None = None,
) -> EpisodeResult:
    """Roll the policy out for one seeded episode; ``frames`` collects every low-level step's cameras."""
    observation = env.reset(seed=seed)
    result = EpisodeResult(env.task, seed, observation.instruction, False, 0)
    record = None
    if frames is not None:
        frames.append(np.concatenate([f.rgb for f in observation.cameras.values()], axis=1))

        def record(environment: MetaWorldEnv) -> None:
            frames.append(np.concatenate([f.rgb for f in environment.observe().cameras.values()], axis=1))

    for _ in range(keyframe_budget):
        started = time.perf_counter()
        action = policy.act(observation)
        result.decision_seconds.append(time.perf_counter() - started)
        flags = [float(action.gripper_open), float(action.ignore_collision)]
        result.actions.append([round(float(v), 5) for v in action.position] + flags)
        outcome = env.execute(action, on_step=record)
        result.keyframes += 1
        observation = outcome.observation
        if outcome.success:
            result.success, result.stop_reason = True, "success"
            return result
        if env.episode_over:
            result.stop_reason = "episode step budget spent"
            return result
    result.stop_reason = f"keyframe budget ({keyframe_budget}) spent"
    return result


@dataclass(frozen=True)
class EvaluationJob:
    """One evaluation episode: a task and its evaluation seed."""

    task: str
    seed: int
    first: bool  # the task's first episode (the one filmed with ``--video``)


STEPS_PER_KEYFRAME = 160  # simulator steps an evaluation episode may spend per keyframe of its budget


def evaluation_env(worker: Any, task: str, policy: KeyframePolicy, keyframe_budget: int) -> MetaWorldEnv:
    """The simulator an evaluation episode runs in: the policy's cameras and image size, a step limit for the budget."""
    cameras, size = tuple(policy.config.cameras), policy.config.image_size
    return worker.env(task, cameras, size, keyframe_budget * STEPS_PER_KEYFRAME)


def evaluate_episode_on_worker(
    worker: Any,
    policy_source: Any,
    job: EvaluationJob,
    keyframe_budget: int,
    video_dir: str | None,
    inference: dict[str, Any] | None = None,
    controller: dict[str, Any] | None = None,
) -> EpisodeResult:
    """One episode inside an :class:`~cortico.envs.workers.EnvWorker` (a Ray actor or in this process).

    ``policy_source`` is a checkpoint path (loaded once per worker, with ``inference`` settings applied) or,
    in process, the policy itself. ``controller`` changes the keyframe controller's settings
    (:class:`~cortico.envs.keyframe_servo.ServoConfig`).
    """
    from cortico.envs.keyframe_servo import servo_config
    from cortico.envs.visualize import write_video

    if isinstance(policy_source, KeyframePolicy):
        policy = policy_source
    else:
        key = ("policy", str(policy_source), json.dumps(inference or {}, sort_keys=True))
        if key not in worker.cache:
            from cortico.policies.training import load_policy

            loaded = load_policy(policy_source).eval()
            loaded.config = loaded.config.with_inference_settings(inference or {})
            worker.cache[key] = loaded
        policy = worker.cache[key]
    env = evaluation_env(worker, job.task, policy, keyframe_budget)
    env.servo = servo_config(controller)
    frames = [] if video_dir is not None and job.first else None
    result = run_episode(policy, env, job.seed, keyframe_budget, frames)
    if frames:
        write_video(Path(video_dir) / f"{job.task}_seed{job.seed}.mp4", frames, fps=40)
    return result


def load_finished_episodes(path: Path) -> dict[tuple[str, int], EpisodeResult]:
    """Episodes already evaluated (one JSON line each; a line cut short by a crash is ignored)."""
    finished: dict[tuple[str, int], EpisodeResult] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                result = EpisodeResult(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue
            finished[(result.task, result.seed)] = result
    return finished


def evaluate_policy(
    policy: KeyframePolicy,
    tasks: list[str],
    episodes_per_task: int,
    *,
    seed: int = 0,
    keyframe_budget: int = 15,
    video_dir: str | Path | None = None,
    progress: bool = True,
    workers: int = 1,
    checkpoint: str | Path | None = None,
    ray: RayOptions | None = None,
    episodes_file: str | Path | None = None,
    controller: dict[str, Any] | None = None,
) -> EvaluationReport:
    """Evaluate ``policy`` on ``tasks``: in this process (``workers=1``) or on Ray env workers.

    Ray workers load the policy from ``checkpoint`` and apply ``policy``'s inference settings (its config's
    ``inference_settings``), so they decide as ``policy`` does. With ``episodes_file`` every finished episode is
    appended there and episodes already in it are not run again (``--resume``). The report lists the
    episodes in task order whatever the number of workers. ``controller`` changes the keyframe controller's
    settings (e.g. ``{"detour_clearance": 0}``: straight moves only, as before 2026-12-05).
    """
    from tqdm import tqdm

    from cortico.envs.keyframe_servo import servo_config
    from cortico.envs.workers import EnvWorker

    controller = dict(controller or {})
    servo_config(controller)  # unknown settings fail here, before any worker starts

    if episodes_per_task < 1 or keyframe_budget < 1:
        raise ValueError("episodes per task and the keyframe budget must be >= 1")
    if workers > 1 and checkpoint is None:
        raise ValueError("evaluation on Ray workers needs the checkpoint path (workers load the policy from it)")
    untrained = [t for t in tasks if policy.config.tasks and t not in policy.config.tasks]
    inference = policy.config.inference_values()
    jobs = [EvaluationJob(t, evaluation_seed(seed, e), e == 0) for t in tasks for e in range(episodes_per_task)]
    log = Path(episodes_file) if episodes_file else None
    finished = load_finished_episodes(log) if log else {}
    todo = deque(job for job in jobs if (job.task, job.seed) not in finished)
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="eval", unit="ep", disable=not progress)
    video = str(video_dir) if video_dir is not None else None

    def record(job: EvaluationJob, result: EpisodeResult) -> None:
        finished[(job.task, job.seed)] = result
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as handle:
                handle.write(json.dumps(asdict(result)) + "\n")
        bar.update(1)
        wins = sum(e.success for e in finished.values())
        bar.set_postfix(task=job.task, success=f"{wins}/{len(finished)}")

    stats: list[dict[str, Any]] = []
    try:
        if workers == 1:
            worker = EnvWorker()
            try:
                while todo:
                    job = todo.popleft()
                    if job.first:  # one task at a time: close the previous task's simulator
                        worker.close()
                    result = evaluate_episode_on_worker(worker, policy, job, keyframe_budget, video, None, controller)
                    record(job, result)
            finally:
                worker.close()
        else:
            stats = _evaluate_with_workers(
                todo, str(checkpoint), keyframe_budget, video, workers, ray, record, inference, controller
            )  # fmt: skip
    finally:
        bar.close()
    episodes = [finished[(job.task, job.seed)] for job in jobs]
    return EvaluationReport(
        episodes, keyframe_budget, untrained, workers=stats, inference=inference, controller=controller
    )


def _evaluate_with_workers(
    todo: deque, checkpoint: str, keyframe_budget: int, video: str | None, workers: int, ray: RayOptions | None,
    record: Any, inference: dict[str, Any], controller: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    from cortico.envs.workers import WorkerPool
    from cortico.ray_runtime import clamp_workers, ray_session

    ray = ray or RayOptions()
    with ray_session(ray.address, dashboard=ray.dashboard) as session:
        pool = WorkerPool(clamp_workers(workers, ray.cpus_per_worker, session.cpus), ray.cpus_per_worker)
        try:
            pool.run(
                next_job=lambda: todo.popleft() if todo else None,
                function=evaluate_episode_on_worker,
                arguments=lambda job: (checkpoint, job, keyframe_budget, video, inference, controller),
                on_result=record,
            )
        finally:
            stats = pool.summary()
            pool.shutdown()
    return stats


def write_report(report: EvaluationReport, json_path: str | Path, title: str = "") -> dict[str, Path]:
    """Write the JSON report, the markdown table beside it and a bar plot (PNG) of success per task."""
    json_path = Path(json_path)
    write_json_atomic(json_path, report.to_dict())
    table = json_path.with_suffix(".md")
    table.write_text((f"## {title}\n\n" if title else "") + report.markdown())
    plot = json_path.with_suffix(".png")
    plot_success(report, plot, title)
    return {"json": json_path, "markdown": table, "plot": plot}


def plot_success(report: EvaluationReport, path: Path, title: str = "") -> None:
    """Bar plot of per-task success with Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cortico.atomic import atomic_path

    rows = report.per_task()
    names = list(rows)
    rates = np.array([rows[n]["success_rate"] for n in names])
    low = rates - np.array([rows[n]["wilson95"][0] for n in names])
    high = np.array([rows[n]["wilson95"][1] for n in names]) - rates
    figure, axis = plt.subplots(figsize=(max(4, 0.7 * len(names) + 2), 3.2))
    axis.bar(range(len(names)), rates, yerr=[low, high], capsize=3, color="#4c72b0")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("success")
    axis.set_title(title or f"mean success {report.summary()['mean_success']:.0%}")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
