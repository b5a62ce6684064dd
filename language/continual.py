"""Continual learning of language tasks in sequence: the learner, the metrics and one benchmark run.

``R[i][j]`` is the exact-match accuracy on task ``j``'s test split after training through task ``i``.
ACC, BWT and forgetting follow the usual definitions (``docs/language.md``); the forgetting curve is
measured on validation subsets during training and its area (AUFC) is its mean over the steps after the
first task, in accuracy points (lower is better).
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from cortico.language.configuration import TRC2Config
from cortico.language.data import Encoded, concatenate, encode, exact_match
from cortico.language.modeling import TRC2ForCausalLM
from cortico.language.replay import ControllerConfig, ReplayBuffers, ReplayController, replay_loss
from cortico.language.tasks import LanguageTask


@dataclass(frozen=True)
class MethodSpec:
    """A continual-learning method: the architecture, how it replays, and whether it trains jointly."""

    architecture: str  # "trc2", "trc2-no-thalamus", "trc2-no-hippocampus", "trc2-no-both" or "dense"
    replay: str  # "none", "fixed" (experience replay) or "controlled" (ring + reservoir + controller)
    joint: bool = False
    description: str = ""


METHODS: dict[str, MethodSpec] = {
    "naive": MethodSpec("dense", "none", description="dense Transformer, same parameter count, sequential fine-tuning"),
    "er": MethodSpec("dense", "fixed", description="dense Transformer with experience replay (same buffer size)"),
    "joint": MethodSpec("dense", "none", joint=True, description="dense Transformer trained on all tasks at once"),
    "trc2": MethodSpec("trc2", "controlled", description="TRC2: thalamus, hippocampus, controlled replay"),
    "trc2-no-thalamus": MethodSpec("trc2-no-thalamus", "controlled", description="TRC2 without the thalamus"),
    "trc2-no-hippocampus": MethodSpec("trc2-no-hippocampus", "controlled", description="TRC2 without the hippocampus"),
    "trc2-no-both": MethodSpec("trc2-no-both", "controlled", description="plain decoder with controlled replay"),
    "trc2-no-replay": MethodSpec("trc2", "none", description="TRC2 architecture, sequential fine-tuning"),
}


@dataclass
class ContinualConfig:
    """Sizes of one continual run (the defaults are the committed benchmark's)."""

    steps_per_task: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    max_length: int = 64
    eval_every: int = 50
    curve_examples: int = 64  # validation examples per task for the forgetting curve
    test_examples: int = 400
    buffer_size: int = 256  # replay examples (the same for experience replay and TRC2)
    probe_examples: int = 32  # training examples per past task kept as the controller's probes
    probe_every: int = 25
    hidden_size: int = 128
    num_hidden_layers: int = 4
    intermediate_size: int = 256
    controller: ControllerConfig = field(default_factory=ControllerConfig)


def model_config(architecture: str, vocab_size: int, config: ContinualConfig) -> TRC2Config:
    """The TRC2 configuration of an architecture; ``dense`` is matched to TRC2's parameter count."""
    base = dict(
        vocab_size=vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        intermediate_size=config.intermediate_size, max_position_embeddings=config.max_length,
    )  # fmt: skip
    switches = {
        "trc2": (True, True), "trc2-no-thalamus": (False, True), "trc2-no-hippocampus": (True, False),
        "trc2-no-both": (False, False), "dense": (False, False),
    }  # fmt: skip
    if architecture not in switches:
        raise ValueError(f"unknown architecture {architecture!r}; available: {', '.join(switches)}")
    thalamus, hippocampus = switches[architecture]
    if architecture != "dense":
        return TRC2Config(**base, thalamus=thalamus, hippocampus=hippocampus)
    target = count_parameters(TRC2ForCausalLM(TRC2Config(**base)))
    narrow = count_parameters(
        TRC2ForCausalLM(TRC2Config(**(base | {"intermediate_size": 4}), thalamus=False, hippocampus=False))
    )
    per_unit = config.num_hidden_layers * 3 * config.hidden_size  # gate, up and down rows of every SwiGLU
    width = 4 + round((target - narrow) / per_unit)
    return TRC2Config(**(base | {"intermediate_size": width}), thalamus=False, hippocampus=False)


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class ContinualLearner:
    """Trains a model one batch at a time, with optional replay.

    The same loop serves the benchmark and online learning (``cortico language learn``).
    """

    def __init__(
        self,
        model: TRC2ForCausalLM,
        replay: str = "none",
        config: ContinualConfig | None = None,
        seed: int = 0,
    ) -> None:
        if replay not in ("none", "fixed", "controlled"):
            raise ValueError(f"replay must be 'none', 'fixed' or 'controlled', got {replay!r}")
        self.config = config or ContinualConfig()
        self.model = model
        self.replay = replay
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay
        )
        self.buffers = None
        if replay != "none":
            recent = 0.25 if replay == "controlled" else 0.0
            self.buffers = ReplayBuffers(self.config.buffer_size, recent_fraction=recent, seed=seed)
        self.controller = ReplayController(self.config.controller) if replay == "controlled" else None
        self.tokens = 0
        self.steps = 0

    def replay_settings(self) -> tuple[float, int, float]:
        """Weight, batch size and long-term fraction of the next replay batch."""
        if self.controller is not None:
            return self.controller.weight, self.controller.batch_size, self.controller.long_term_fraction
        start = self.config.controller
        return start.weight[0], start.batch_size[0], 1.0

    def step(self, batch: Encoded) -> float:
        """One optimiser step on ``batch`` (plus a replay batch); commits hippocampal writes after backward."""
        self.model.train()
        loss = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        self.tokens += batch.tokens
        if self.buffers is not None:
            weight, size, long_term = self.replay_settings()
            replayed = self.buffers.sample(size, long_term)
            if replayed is not None:
                loss = loss + weight * replay_loss(self.model, replayed)
                self.tokens += replayed.tokens
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.model.flush_memory_writes()
        if self.buffers is not None:
            self.buffers.add(batch)
        self.steps += 1
        return float(loss.detach())

    def probe(self, probes: dict[str, Encoded]) -> float | None:
        """Score the past tasks' probes and let the controller adapt; returns the measured forgetting."""
        if self.controller is None or not probes:
            return None
        return self.controller.update({name: exact_match(self.model, data) for name, data in probes.items()})


def accuracy_metrics(r: list[list[float]]) -> dict[str, float]:
    """ACC, BWT and forgetting of an accuracy matrix (``R[i][j]``: task j after training through task i)."""
    matrix = np.asarray(r, dtype=float)
    final = matrix[-1]
    tasks = matrix.shape[1]
    if matrix.shape[0] == 1:  # joint training: one evaluation only
        return {"acc": float(final.mean()), "bwt": None, "forgetting": None}
    past = range(tasks - 1)
    return {
        "acc": float(final.mean()),
        "bwt": float(np.mean([final[j] - matrix[j, j] for j in past])),
        "forgetting": float(np.mean([matrix[: tasks - 1, j].max() - final[j] for j in past])),
    }


def area_under_forgetting(curve: list[dict[str, Any]]) -> float:
    """Mean, over curve points after the first task, of the mean drop of finished tasks from their best."""
    best: dict[str, float] = {}
    values = []
    for point in curve:
        finished = point["finished"]
        for task, score in point["scores"].items():
            best[task] = max(best.get(task, score), score)
        if finished:
            values.append(float(np.mean([best[t] - point["scores"][t] for t in finished])))
    return float(np.mean(values)) if values else float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of the current process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_continual(
    method: str,
    tasks: list[LanguageTask],
    tokenizer: PreTrainedTokenizerFast,
    config: ContinualConfig,
    seed: int,
    progress: Any = None,
) -> dict[str, Any]:
    """Train ``method`` on ``tasks`` in order (or jointly), evaluating all tasks after each; returns the report."""
    spec = METHODS[method]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TRC2ForCausalLM(model_config(spec.architecture, len(tokenizer), config))
    learner = ContinualLearner(model, spec.replay, config, seed=seed)
    train = {t.name: encode(tokenizer, t.splits["train"], config.max_length) for t in tasks}
    curve_sets = {
        t.name: encode(tokenizer, t.splits["validation"][: config.curve_examples], config.max_length) for t in tasks
    }
    tests = {t.name: encode(tokenizer, t.splits["test"][: config.test_examples], config.max_length) for t in tasks}
    names = [t.name for t in tasks]
    r: list[list[float]] = []
    curve: list[dict[str, Any]] = []
    probes: dict[str, Encoded] = {}
    train_seconds = 0.0

    def batches(name_list: list[str], steps: int):  # noqa: ANN202
        pools = [train[n] for n in name_list]
        for _ in range(steps):
            if len(pools) == 1:
                yield pools[0].select(rng.integers(len(pools[0]), size=config.batch_size))
            else:  # joint: an equal share of every task in each batch
                share = np.array_split(np.arange(config.batch_size), len(pools))
                yield concatenate([p.select(rng.integers(len(p), size=len(s))) for p, s in zip(pools, share)])

    phases = [names] if spec.joint else [[n] for n in names]
    steps = config.steps_per_task * (len(names) if spec.joint else 1)
    for phase, current in enumerate(phases):
        finished = names[:phase] if not spec.joint else []
        for step, batch in enumerate(batches(current, steps), start=1):
            started = time.perf_counter()
            loss = learner.step(batch)
            train_seconds += time.perf_counter() - started
            if step % config.probe_every == 0:
                learner.probe(probes)
            if step % config.eval_every == 0 and not spec.joint:
                scores = {n: exact_match(model, curve_sets[n]) for n in names[: phase + 1]}
                curve.append({"step": learner.steps, "task": current[0], "finished": finished, "scores": scores})
            if progress is not None:
                progress.update(1)
                progress.set_postfix(task=current[0] if not spec.joint else "joint", loss=f"{loss:.3f}")
        r.append([exact_match(model, tests[n]) for n in names])
        for n in current:
            probe_size = min(config.probe_examples, len(train[n]))
            probes[n] = train[n].select(rng.choice(len(train[n]), size=probe_size, replace=False))
    report = {
        "method": method,
        "tasks": names,
        "seed": seed,
        "R": r,
        **accuracy_metrics(r),
        "aufc": area_under_forgetting(curve) if not spec.joint else None,
        "curve": curve,
        "parameters": count_parameters(model),
        "train_seconds": train_seconds,
        "tokens": learner.tokens,
        "tokens_per_second": learner.tokens / max(train_seconds, 1e-9),
        "peak_rss_mb": peak_rss_mb(),
    }
    if learner.controller is not None:
        report["controller"] = learner.controller.history
    return report


def config_dict(config: ContinualConfig) -> dict[str, Any]:
    """A JSON-friendly copy of a config."""
    return asdict(config)
