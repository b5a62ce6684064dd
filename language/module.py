"""The language module the agent calls: parse a command, answer a question from memory, learn online.

One TRC2 model and its tokenizer are trained on the suite's commands and on event-log questions. A
command the model parses with low confidence (or into something that is not a task) falls back to the
nearest catalogue instruction under the packaged MiniLM sentence encoder. New commands are learned online
(``learn``): a surprising example is trained on with replay (its states are written to the hippocampal
memory), and ``consolidate`` replays the buffers when the agent is idle. A module folder holds
``config.json`` + ``model.safetensors`` (``save_pretrained``), ``tokenizer.json``, ``module.json``
(suite, thresholds, metrics) and ``replay.jsonl`` (the replay buffer's texts).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from cortico.atomic import atomic_directory
from cortico.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cortico.compute import torch_threads
from cortico.envs.task_catalog import SUITES, TASKS
from cortico.language.continual import ContinualConfig, ContinualLearner, model_config
from cortico.language.data import Encoded, concatenate, encode, exact_match
from cortico.language.modeling import TRC2ForCausalLM
from cortico.language.tasks import REPEATS, SPEEDS, Example, LanguageTask, all_texts, make_task
from cortico.language.tokenizer import decode_words, encode_prompt, train_tokenizer

logger = logging.getLogger(__name__)
MODULE_FILE = "module.json"
REPLAY_FILE = "replay.jsonl"


@dataclass(frozen=True)
class ParsedCommand:
    """A parsed command.

    The task, its arguments (``speed``, ``repeat``), a confidence in [0, 1] and which
    path produced it (``"trc2"`` or ``"nearest-instruction"``).
    """

    task: str
    arguments: dict[str, Any]
    confidence: float
    source: str


@dataclass(frozen=True)
class Answer:
    """An answer to a question about what the robot did, with the model's confidence."""

    text: str
    confidence: float


@dataclass
class ModuleSettings:
    """What a module was trained for and how it decides (saved as ``module.json``)."""

    suite: str = "mt10"
    seed: int = 0
    confidence_threshold: float = 0.6  # below it, a command goes to the nearest-instruction fallback
    surprise_threshold: float = 0.3  # online learning trains on examples whose loss (nats/token) is above it
    max_new_tokens: int = 16
    online_learning_rate: float = 1e-3
    metrics: dict[str, Any] = field(default_factory=dict)


class NearestInstruction:
    """Commands to tasks by the most similar catalogue instruction under a sentence encoder (MiniLM).

    The language module's fallback, and the whole parser when no module is trained: the confidence is
    the cosine similarity, arguments come from the grammar's keyword phrases.
    """

    def __init__(self, tasks: Sequence[str], text_encoder: Any = None) -> None:
        if text_encoder is None:
            from cortico.perception.text_encoder import TextEncoder

            text_encoder = TextEncoder()
        self.tasks = tuple(tasks)
        self.text_encoder = text_encoder
        self._owners = [t for t in self.tasks for _ in TASKS[t].instructions]
        self._embeddings = text_encoder.embed([i for t in self.tasks for i in TASKS[t].instructions])

    def parse(self, text: str) -> ParsedCommand:
        """The task of the most similar instruction, with the similarity as confidence."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a command must be a non-empty string, e.g. 'open the drawer'")
        similarity = self._embeddings @ self.text_encoder.embed(text)[0]
        best = int(similarity.argmax())
        return ParsedCommand(
            self._owners[best], keyword_arguments(text), float(similarity[best].clamp(0, 1)), "nearest-instruction"
        )

    parse_command = parse


class LanguageModule:
    """Command parsing, question answering and online learning through one TRC2 model (see module doc)."""

    def __init__(
        self,
        model: TRC2ForCausalLM,
        tokenizer: PreTrainedTokenizerFast,
        settings: ModuleSettings | None = None,
        replay: Sequence[Example] = (),
        text_encoder: Any = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings or ModuleSettings()
        self.tasks = tuple(SUITES[self.settings.suite])
        self.replay = list(replay)
        self._text_encoder = text_encoder
        self._nearest: NearestInstruction | None = None

    # ------------------------------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompt_text: str) -> tuple[str, float]:
        """Greedy answer to ``[BOS] prompt [SEP]`` and its confidence (geometric mean of token probabilities)."""
        prompt = torch.tensor([encode_prompt(self.tokenizer, prompt_text)])
        output = self.model.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=self.settings.max_new_tokens,
            do_sample=False, output_scores=True, return_dict_in_generate=True,
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
        )  # fmt: skip
        scores = self.model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)[0]
        generated = output.sequences[0, prompt.shape[1] :]
        confidence = float(scores.mean().exp()) if len(scores) else 0.0
        return decode_words(self.tokenizer, generated.tolist()), confidence

    # ------------------------------------------------------------------------------------------ commands
    def parse_command(self, text: str) -> ParsedCommand:
        """``(task, arguments, confidence)`` of a command; empty text is refused, long text is truncated."""
        decoded, confidence = self.generate(text)
        parsed = self._canonical(decoded, confidence)
        if parsed is not None and confidence >= self.settings.confidence_threshold:
            return parsed
        fallback = self._nearest_instruction(text)
        if parsed is None or fallback.confidence > confidence:
            return fallback
        return parsed

    def _canonical(self, decoded: str, confidence: float) -> ParsedCommand | None:
        """``"<task> <speed> <repeat>"`` -> a command, or None when it is malformed or not a suite task."""
        parts = decoded.split()
        if len(parts) != 3 or parts[0] not in self.tasks or parts[1] not in SPEEDS or not parts[2].isdigit():
            return None
        return ParsedCommand(parts[0], {"speed": parts[1], "repeat": int(parts[2])}, confidence, "trc2")

    def _nearest_instruction(self, text: str) -> ParsedCommand:
        if self._nearest is None:
            self._nearest = NearestInstruction(self.tasks, self._text_encoder)
        return self._nearest.parse(text)

    # ------------------------------------------------------------------------------------------ questions
    def answer(self, question: str, memory_evidence: Any) -> Answer:
        """Answer ``question`` from what the memory holds.

        ``memory_evidence`` is an event log string, a list of ``(seconds, task, succeeded)``
        events, or a :class:`cortico.memory.records.Evidence`.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        log = self.event_log(memory_evidence)
        text, confidence = self.generate(f"{log} question : {question.strip().rstrip('?').strip()} ?")
        return Answer(text, confidence)

    def event_log(self, evidence: Any) -> str:
        """The ``at <s> <task> done|failed ;`` log the question answerer reads."""
        if isinstance(evidence, str):
            return evidence.strip()
        if hasattr(evidence, "episodes"):  # memory Evidence: one event per command it still knows of
            evidence = [(e.start, self.task_of_instruction(e.label), e.success) for e in evidence.episodes() if e.label]
        return " ".join(f"at {int(round(t))} {task} {'done' if ok else 'failed'} ;" for t, task, ok in evidence)

    def task_of_instruction(self, instruction: str) -> str:
        """The task an instruction (or a task name) asked for: catalogue lookup, else the parser."""
        if instruction in self.tasks:
            return instruction
        for task in self.tasks:
            if instruction in TASKS[task].instructions:
                return task
        return self.parse_command(instruction).task

    # ------------------------------------------------------------------------------------------ learning
    def learner(self, config: ContinualConfig | None = None) -> ContinualLearner:
        """A learner over this model with controlled replay, its buffers filled from ``replay``."""
        config = config or ContinualConfig(learning_rate=self.settings.online_learning_rate)
        learner = ContinualLearner(self.model, "controlled", config)
        if self.replay:
            learner.buffers.add(self.encode(self.replay))
        return learner

    def encode(self, examples: Sequence[Example]) -> Encoded:
        """Examples as model inputs."""
        return encode(self.tokenizer, examples, self.model.config.max_position_embeddings)

    def surprise(self, examples: Sequence[Example]) -> list[float]:
        """Per-example answer loss (nats per token): how unexpected each example is to the model."""
        data = self.encode(examples)
        losses = []
        with torch.no_grad():
            for row in range(len(data)):
                one = data.select([row])
                losses.append(float(self.model(**_inputs(one), labels=one.labels, plain=True).lm_loss))
        return losses

    def add_words(self, texts: Iterable[str]) -> list[str]:
        """Add words the tokenizer does not know (new verbs) and grow the embeddings; returns them."""
        known = self.tokenizer.get_vocab()
        split = self.tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
        new = sorted({word for t in texts for word, _ in split(t.lower()) if word not in known})
        if new:
            self.tokenizer.add_tokens(new)
            self.model.resize_token_embeddings(len(self.tokenizer))
        return new

    def learn(self, examples: Sequence[Example], steps_per_example: int = 8, progress: bool = False) -> dict[str, Any]:
        """Online learning: train on each surprising example (with replay), then keep it in the replay buffer."""
        if not examples:
            return {"examples": 0, "trained": 0, "new_words": []}
        new_words = self.add_words(e.input + " " + e.output for e in examples)
        learner = self.learner()
        surprise = self.surprise(examples)
        trained = 0
        for example, loss in tqdm(list(zip(examples, surprise)), desc="learn", disable=not progress):
            if loss > self.settings.surprise_threshold:
                batch = self.encode([example])
                for _ in range(steps_per_example):
                    learner.step(batch)
                trained += 1
            self.replay.append(example)
        self.model.eval()
        return {"examples": len(examples), "trained": trained, "new_words": new_words, "surprise": surprise}

    def consolidate(self, steps: int = 50) -> int:
        """Idle-time consolidation: replay-only steps from the buffers (through the plain path)."""
        if not self.replay or steps < 1:
            return 0
        learner = self.learner()
        rng = np.random.default_rng(len(self.replay))
        data = self.encode(self.replay)
        for _ in range(steps):
            learner.step(data.select(rng.integers(len(data), size=min(len(data), learner.config.batch_size))))
        self.model.eval()
        return steps

    # ------------------------------------------------------------------------------------------ evaluation
    def evaluate(self, task: LanguageTask, splits: Iterable[str] = ("test",)) -> dict[str, float]:
        """Exact match of the model on the given splits of a task family."""
        return {split: exact_match(self.model, self.encode(task.splits[split])) for split in splits}

    def parse_accuracy(self, examples: Sequence[Example]) -> dict[str, float]:
        """Share of commands whose task and arguments ``parse_command`` gets exactly right."""
        correct = fallback = 0
        for example in examples:
            parsed = self.parse_command(example.input)
            task, speed, repeat = example.output.split()
            correct += parsed.task == task and parsed.arguments == {"speed": speed, "repeat": int(repeat)}
            fallback += parsed.source != "trc2"
        return {"accuracy": correct / len(examples), "fallback_rate": fallback / len(examples)}

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the module folder atomically."""
        with atomic_directory(directory) as staging:
            self.model.save_pretrained(staging)
            self.tokenizer.save_pretrained(staging)
            (staging / MODULE_FILE).write_text(json.dumps(asdict(self.settings), indent=2))
            with open(staging / REPLAY_FILE, "w") as f:
                for example in self.replay:
                    f.write(json.dumps({"input": example.input, "output": example.output}) + "\n")
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, text_encoder: Any = None) -> LanguageModule:
        """Load a module folder; a folder of another architecture or a damaged one is refused clearly."""
        directory = Path(directory)
        config_path = directory / "config.json"
        if not config_path.is_file() or not (directory / MODULE_FILE).is_file():
            raise CheckpointError(
                f"{directory} is not a cortico language module (config.json or {MODULE_FILE} missing)"
            )
        try:
            model_type = json.loads(config_path.read_text()).get("model_type")
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{config_path} is not valid JSON: {error}") from error
        if model_type != "trc2":
            raise CheckpointError(f"{directory} holds a {model_type!r} model, not a TRC2 language module")
        try:
            model = TRC2ForCausalLM.from_pretrained(directory)
            tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
            settings = ModuleSettings(**json.loads((directory / MODULE_FILE).read_text()))
        except (OSError, ValueError, TypeError, RuntimeError, SafetensorError) as error:
            raise CheckpointError(f"{directory} is corrupt or incomplete ({type(error).__name__}: {error})") from error
        replay = []
        if (directory / REPLAY_FILE).is_file():
            replay = [
                Example(**json.loads(line)) for line in (directory / REPLAY_FILE).read_text().splitlines() if line
            ]
        return cls(model, tokenizer, settings, replay, text_encoder)


def _inputs(data: Encoded) -> dict[str, torch.Tensor]:
    return {"input_ids": data.input_ids, "attention_mask": data.attention_mask}


def keyword_arguments(text: str) -> dict[str, Any]:
    """Speed and repetition from the grammar's phrases (the fallback path's arguments)."""
    padded = f" {text.lower().strip()} "
    speed = next((s for s, phrases in SPEEDS.items() for p in phrases if p and f" {p} " in padded), "normal")
    repeat = next((n for n, phrases in REPEATS.items() for p in phrases if p and f" {p} " in padded), 1)
    return {"speed": speed, "repeat": repeat}


def module_tasks(suite: str, seed: int) -> list[LanguageTask]:
    """The command and event-question families the module is trained on."""
    return [make_task("commands", seed, suite), make_task("events", seed, suite)]


def train_module(
    out: str | Path,
    suite: str = "mt10",
    steps: int = 1500,
    seed: int = 0,
    config: ContinualConfig | None = None,
    resume: bool = True,
    checkpoint_every: int = 250,
    progress: bool = True,
    evaluate: bool = True,
) -> LanguageModule:
    """Train a module on the suite's commands and event questions (both at once), checkpointing as it goes.

    With ``evaluate`` the held-out exact match and parsing accuracy are stored in ``module.json``.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; available: {', '.join(SUITES)}")
    config = config or ContinualConfig(learning_rate=1e-3)
    out = Path(out)
    checkpoint = out.with_name(out.name + ".checkpoint")
    tasks = module_tasks(suite, seed)
    tokenizer = train_tokenizer(all_texts(tasks))
    torch.manual_seed(seed)
    model = TRC2ForCausalLM(model_config("trc2", len(tokenizer), config))
    learner = ContinualLearner(model, "controlled", config, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    start = 0
    if resume and checkpoint.exists():
        try:
            start, _ = load_checkpoint(checkpoint, model=model, optimizer=learner.optimizer, generator=generator)
            logger.info("resuming language training from step %d", start)
        except CheckpointError as error:
            logger.warning("ignoring the unusable checkpoint %s: %s", checkpoint, error)
    data = [encode(tokenizer, t.splits["train"], config.max_length) for t in tasks]
    half = config.batch_size // 2
    bar = tqdm(total=steps, initial=start, desc="train language module", disable=not progress)
    with bar, torch_threads(1):  # a small model: one thread is as fast, and far faster on a busy machine
        for step in range(start + 1, steps + 1):
            picks = [torch.randint(len(d), (half,), generator=generator) for d in data]
            loss = learner.step(concatenate([d.select(p) for d, p in zip(data, picks)]))
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            if step % checkpoint_every == 0 and step < steps:
                save_checkpoint(checkpoint, model=model, optimizer=learner.optimizer, step=step, generator=generator)
    replay = [e for t in tasks for e in t.splits["train"][: config.buffer_size // len(tasks)]]
    module = LanguageModule(model.eval(), tokenizer, ModuleSettings(suite=suite, seed=seed), replay)
    commands, events = tasks
    if evaluate:
        module.settings.metrics = {
            "steps": steps,
            "commands_exact_match": module.evaluate(commands, ("test", "novel")),
            "events_exact_match": module.evaluate(events)["test"],
            "parse_held_out_combinations": module.parse_accuracy(commands.splits["test"]),
            "parse_held_out_paraphrases": module.parse_accuracy(commands.splits["novel"]),
        }
    module.save(out)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return module
