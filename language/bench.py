"""The continual-language benchmark: every method x task order x seed, resumable, in worker processes.

Each run is a fresh process (``max_tasks_per_child=1``) so its peak RSS is its own; finished runs are
written atomically to ``<workdir>/runs/`` and skipped on ``--resume``. Training throughput of the
architectures is measured afterwards in one process, side by side on the same batches.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from cortico.atomic import atomic_directory, write_json_atomic
from cortico.language.continual import (
    METHODS,
    ContinualConfig,
    ContinualLearner,
    count_parameters,
    model_config,
    run_continual,
)
from cortico.language.data import encode
from cortico.language.modeling import TRAINING_REVISION, TRC2ForCausalLM
from cortico.language.tasks import FAMILIES, LanguageTask, make_task, training_texts
from cortico.language.tokenizer import TOKENIZER_KIND, train_tokenizer

logger = logging.getLogger(__name__)

# Task orders (indices into FAMILIES): the natural one, its reverse, and one interleaved.
ORDERS: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2))
DATA_SIZES = {"train": 3000, "validation": 200, "test": 400}


def benchmark_tasks(seed: int) -> list[LanguageTask]:
    """The four task families for ``seed`` in their natural order."""
    return [make_task(family, seed, sizes=DATA_SIZES) for family in FAMILIES]


def tokenizer_for(seed: int, directory: Path):  # noqa: ANN201
    """Train (or load) the tokenizer of ``seed``'s corpora, so that every worker uses the same one."""
    from transformers import PreTrainedTokenizerFast

    if (directory / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(directory)
    tokenizer = train_tokenizer(training_texts(benchmark_tasks(seed)))
    with atomic_directory(directory) as staging:
        tokenizer.save_pretrained(staging)
    return tokenizer


def tokenizer_directory(workdir: Path, seed: int) -> Path:
    """Where seed ``seed``'s tokenizer lives (named by its kind, so another kind is never reused)."""
    return Path(workdir) / f"tokenizer-{TOKENIZER_KIND}-seed{seed}"


def run_key(method: str, order: int, seed: int) -> str:
    """File stem of one run."""
    return f"{method}-order{order}-seed{seed}"


def _report_key(report: dict[str, Any]) -> str:
    """The run key of a finished run's report."""
    return run_key(report["method"], report["order"], report["seed"])


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: one method on one order and seed (fresh process)."""
    torch.set_num_threads(job["threads"])
    config = _config_from_dict(job["config"])
    tasks = benchmark_tasks(job["seed"])
    tasks = [tasks[i] for i in ORDERS[job["order"]]]
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(job["tokenizer"])
    report = run_continual(job["method"], tasks, tokenizer, config, job["seed"])
    report["order"] = job["order"]
    report["config_hash"] = job["config_hash"]
    write_json_atomic(job["output"], report)
    return report


def _config_from_dict(data: dict[str, Any]) -> ContinualConfig:
    from cortico.language.replay import ControllerConfig

    data = dict(data)
    controller = {k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("controller").items()}
    return ContinualConfig(**data, controller=ControllerConfig(**controller))


def config_hash(config: ContinualConfig) -> str:
    """A short hash of the run settings (a resumed benchmark only reuses runs made with the same ones)."""
    payload = json.dumps(
        {
            "config": asdict(config),
            "orders": ORDERS,
            "sizes": DATA_SIZES,
            "tokenizer": TOKENIZER_KIND,
            "revision": TRAINING_REVISION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_benchmark(
    workdir: str | Path,
    methods: list[str] | None = None,
    orders: int = 3,
    seeds: int = 3,
    config: ContinualConfig | None = None,
    workers: int = 1,
    threads: int = 1,
    resume: bool = True,
    ablation_seeds: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) every method x order x seed.

    ``joint`` ignores the order (one run per seed) and the
    ablations (``trc2-no-*``) use the first ``ablation_seeds`` seeds only (default: all).
    """
    config = config or ContinualConfig()
    methods = methods or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {', '.join(METHODS)}")
    if not 1 <= orders <= len(ORDERS):
        raise ValueError(f"orders must be between 1 and {len(ORDERS)}")
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    workdir = Path(workdir)
    digest = config_hash(config)
    jobs, reports = [], []
    for seed in range(seeds):
        tokenizer_dir = tokenizer_directory(workdir, seed)
        tokenizer_for(seed, tokenizer_dir)
        for method in methods:
            if method.startswith("trc2-no-") and ablation_seeds is not None and seed >= ablation_seeds:
                continue
            for order in range(1 if METHODS[method].joint else orders):
                output = workdir / "runs" / f"{run_key(method, order, seed)}.json"
                if resume and output.is_file():
                    try:
                        previous = json.loads(output.read_text())
                    except json.JSONDecodeError:
                        previous = {}
                    if previous.get("config_hash") == digest:
                        reports.append(previous)
                        continue
                jobs.append({
                    "method": method, "order": order, "seed": seed, "config": asdict(config), "config_hash": digest,
                    "tokenizer": str(tokenizer_dir), "output": str(output), "threads": threads,
                })  # fmt: skip
    logger.info("%d runs to do, %d reused", len(jobs), len(reports))
    reports.extend(in_workers(_run_job, jobs, workers, "continual runs", "run", _report_key))
    return {"config": asdict(config), "config_hash": digest, "runs": reports}


def in_workers(
    function: Callable[[dict[str, Any]], dict[str, Any]],
    jobs: list[dict[str, Any]],
    workers: int,
    description: str,
    unit: str,
    label: Callable[[dict[str, Any]], str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Results of ``function`` on each job, as they finish, each in a fresh spawned process (own peak RSS)."""
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        pending = [pool.submit(function, job) for job in jobs]
        with tqdm(total=len(jobs), desc=description, unit=unit) as progress:
            for done in futures.as_completed(pending):
                result = done.result()
                if label is not None:
                    progress.set_postfix(last=label(result))
                progress.update(1)
                yield result


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation over seeds and orders of each method's metrics."""
    table: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        row: dict[str, Any] = {"runs": len(mine), "parameters": mine[0]["parameters"]}
        for metric in ("acc", "bwt", "forgetting", "aufc", "tokens_per_second", "peak_rss_mb"):
            values = np.array([r[metric] for r in mine], dtype=float)
            values = values[~np.isnan(values)]
            row[metric] = float(values.mean()) if len(values) else None
            row[f"{metric}_std"] = float(values.std()) if len(values) else None
        row["final_accuracy_per_task"] = {
            task: float(np.mean([r["R"][-1][r["tasks"].index(task)] for r in mine])) for task in mine[0]["tasks"]
        }
        table[method] = row
    return table


def paired_comparison(runs: list[dict[str, Any]], reference: str = "trc2") -> dict[str, dict[str, Any]]:
    """``reference`` against each other method on the same (order, seed) runs: mean differences and wins.

    Seeds and orders move every method together, so per-pair differences are far less noisy than the
    difference of two means; a method is only compared on the pairs both have.
    """
    by_key = {(r["method"], r["order"], r["seed"]): r for r in runs}
    table: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        if method == reference:
            continue
        pairs = [
            (by_key[(reference, order, seed)], other)
            for (name, order, seed), other in by_key.items()
            if name == method and (reference, order, seed) in by_key
        ]
        if not pairs or METHODS[method].joint:
            continue
        forgetting = np.array([ours["forgetting"] - theirs["forgetting"] for ours, theirs in pairs])
        acc = np.array([ours["acc"] - theirs["acc"] for ours, theirs in pairs])
        table[method] = {
            "pairs": len(pairs),
            "forgetting_difference": float(forgetting.mean()),
            "forgetting_difference_std": float(forgetting.std()),
            "reference_forgets_less": int((forgetting < 0).sum()),
            "acc_difference": float(acc.mean()),
            "acc_difference_std": float(acc.std()),
            "reference_more_accurate": int((acc > 0).sum()),
        }
    return table


def measure_throughput(
    seed: int, tokenizer, config: ContinualConfig, rounds: int = 10, steps: int = 5
) -> dict[str, Any]:  # noqa: ANN001
    """Training tokens/s of each architecture on the same batches, interleaved round by round."""
    tasks = benchmark_tasks(seed)
    batch = encode(tokenizer, [e for t in tasks for e in t.splits["train"][: config.batch_size // len(tasks)]])
    architectures = ("dense", "trc2", "trc2-no-thalamus", "trc2-no-hippocampus", "trc2-no-both")
    learners = {
        a: ContinualLearner(TRC2ForCausalLM(model_config(a, len(tokenizer), config)), "none", config)
        for a in architectures
    }
    seconds: dict[str, list[float]] = {a: [] for a in architectures}
    for round_ in range(rounds + 1):
        for architecture, learner in learners.items():
            started = time.perf_counter()
            for _ in range(steps):
                learner.step(batch)
            if round_:  # the first round warms up
                seconds[architecture].append(time.perf_counter() - started)
    result = {
        a: {
            "tokens_per_second": batch.tokens * steps / float(np.median(seconds[a])),
            "parameters": count_parameters(learners[a].model),
        }
        for a in architectures
    }
    for a in architectures:
        result[a]["ratio_to_dense"] = result[a]["tokens_per_second"] / result["dense"]["tokens_per_second"]
    return {"batch_tokens": batch.tokens, "threads": torch.get_num_threads(), "architectures": result}


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    """The summary as a Markdown table (mean ± std over orders and seeds)."""

    def cell(row: dict[str, Any], metric: str, scale: float = 100.0) -> str:
        if row.get(metric) is None:
            return "n/a"
        return f"{row[metric] * scale:.1f} ± {row[f'{metric}_std'] * scale:.1f}"

    lines = [
        "| method | params | runs | ACC % | BWT % | forgetting % | AUFC % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, row in summary.items():
        lines.append(
            f"| {method} | {row['parameters']:,} | {row['runs']} | {cell(row, 'acc')} | {cell(row, 'bwt')} | "
            f"{cell(row, 'forgetting')} | {cell(row, 'aufc')} |"
        )
    return "\n".join(lines)


def write_report(path: str | Path, result: dict[str, Any], throughput: dict[str, Any] | None) -> dict[str, Any]:
    """Summarise and write the benchmark JSON (atomically); returns what was written."""
    summary = summarise(result["runs"])
    report = {
        "benchmark": "continual_language",
        "families": list(FAMILIES),
        "orders": [[FAMILIES[i] for i in order] for order in ORDERS],
        "methods": {m: asdict(spec) for m, spec in METHODS.items()},
        "config": result["config"],
        "summary": summary,
        "paired_with_trc2": paired_comparison(result["runs"]),
        "throughput": throughput,
        "runs": [{k: v for k, v in r.items() if k != "curve"} | {"curve": r.get("curve")} for r in result["runs"]],
    }
    write_json_atomic(path, report)
    return report


def finished_module(folder: Path, steps: int, seed: int):  # noqa: ANN201 - LanguageModule | None
    """The mt10 module trained and evaluated earlier in ``folder`` with this seed, step count and recipe, else None."""
    from cortico.checkpoint import CheckpointError
    from cortico.language.module import COMMAND_SLOTS, QUESTION_SLOTS, WORD_DROPOUT, LanguageModule

    if not (folder / "module.json").is_file():
        return None
    try:
        module = LanguageModule.load(folder)
    except CheckpointError as error:  # e.g. a module of an earlier revision: trained again
        logger.info("not reusing %s: %s", folder, error)
        return None
    settings = module.settings
    keys = ("steps", "word_dropout", "tokenizer", "probe_slots")
    recipe = [settings.metrics.get(key) for key in keys]
    wanted = [steps, WORD_DROPOUT, TOKENIZER_KIND, [*COMMAND_SLOTS, *QUESTION_SLOTS]]
    if (settings.suite, settings.seed, recipe) != ("mt10", seed, wanted):
        return None
    if "commands_exact_match" not in settings.metrics:  # trained without its evaluation: nothing to report
        return None
    return module


def module_directory(workdir: Path, seed: int) -> Path:
    """Where the bench keeps the mt10 language module of ``seed``."""
    return Path(workdir) / "modules" / f"seed{seed}"


def _train_module_job(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: train (or resume) one seed's mt10 module and return its metrics."""
    from cortico.language.module import train_module

    module = train_module(job["output"], "mt10", job["steps"], job["seed"], progress=False)
    return module.settings.metrics | {"seed": job["seed"]}


PARSING_METRICS = (
    "parse_held_out_paraphrases", "parse_independent_paraphrases", "parse_held_out_combinations",
    "questions_held_out_paraphrases", "questions_held_out_combinations",
)  # fmt: skip


def measure_parsing(
    workdir: str | Path, seeds: int, steps: int, workers: int = 1, resume: bool = True
) -> dict[str, Any]:
    """Command-parsing accuracy of mt10 modules trained with ``seeds`` seeds: per seed, mean and std.

    Parsing varies by several points between seeds, so one module's figure is not reported alone.
    Finished modules with the same recipe are reused on ``resume``.
    """
    per_seed: dict[int, dict[str, Any]] = {}
    jobs = []
    for seed in range(seeds):
        folder = module_directory(Path(workdir), seed)
        module = finished_module(folder, steps, seed) if resume else None
        if module is not None:
            per_seed[seed] = module.settings.metrics | {"seed": seed}
        else:
            jobs.append({"seed": seed, "steps": steps, "output": str(folder)})
    for metrics in in_workers(_train_module_job, jobs, workers, "language modules", "module"):
        per_seed[metrics["seed"]] = metrics
    runs = [per_seed[seed] for seed in sorted(per_seed)]
    summary = {}
    for metric in PARSING_METRICS:
        values = np.array([r[metric]["accuracy"] for r in runs])
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std())}
    return {"suite": "mt10", "steps": steps, "seeds": seeds, "summary": summary, "runs": runs}
