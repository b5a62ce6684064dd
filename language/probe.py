"""The command parser's second expert: read-outs of the packaged sentence encoder (MiniLM).

TRC2 is trained from scratch on the project's own commands, so a word it never saw carries no meaning
for it; the pretrained sentence encoder knows such words. The probe maps the encoder's embedding of a
command to log-probabilities over each slot of the command grammar (the task, the speed, the number of
repetitions) and of the question grammar, and the parser multiplies both experts' distributions slot by
slot (a product of experts). The embedding is the frozen encoder's (linear probe), or, with
``tuned_layers``, that of a copy whose top layers are fine-tuned with the read-outs (:meth:`CommandProbe.tune`):
a mean-pooled embedding is dominated by the words commands share ("close up the open drawer" and "open up
the drawer"), and tuned layers learn which words decide a slot. It is fitted on the same training
examples as TRC2, its read-outs updated by online learning, and saved beside the model as
``probe.safetensors`` (read-outs and tuned layers only; the frozen layers come from the packaged encoder).
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from cortico.compute import torch_threads

PROBE_FILE = "probe.safetensors"
ENCODER_PREFIX = "encoder."  # the tuned layers' tensors in probe.safetensors

SlotTargets = tuple[list[str], dict[str, list[str]]]  # texts, and each slot's label for every text


class TunedSentenceEncoder:
    """The sentence encoder with its top ``layers`` transformer layers trainable, the rest shared with it.

    The embeddings and lower layers are the base encoder's own modules (frozen, not copied), so the tuned
    copy costs only its top layers in memory and on disk. Embeddings are mean-pooled and unit-norm, as the
    base :class:`~cortico.perception.text_encoder.TextEncoder` makes them; in inference the last
    ``cache_size`` texts' embeddings are kept (a weight choice reads the same texts once per weight).
    """

    cache_size = 8192

    def __init__(self, base: Any, layers: int, state: Mapping[str, torch.Tensor] | None = None) -> None:
        stack = base.model.encoder.layer
        if not 1 <= layers <= len(stack):
            raise ValueError(f"tuned_layers must be between 1 and {len(stack)} for {base.name!r}, got {layers}")
        self.tokenizer, self.max_length, self.layers = base.tokenizer, base.max_length, layers
        shared = [base.model.embeddings, *stack[: len(stack) - layers]]
        # a deep copy that reuses the shared modules: only the top layers (and pooler) are new tensors
        self.model = copy.deepcopy(base.model, memo={id(module): module for module in shared}).eval()
        self.model.requires_grad_(False)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()  # the agent parses commands and questions from more than one thread
        for module in self.tuned_modules():
            module.requires_grad_(True)
        if state is not None:
            self.load_state(state)

    def tuned_modules(self) -> nn.ModuleList:
        """The top layers (the only trainable part)."""
        return self.model.encoder.layer[len(self.model.encoder.layer) - self.layers :]

    def state(self) -> dict[str, torch.Tensor]:
        """The tuned layers' tensors, keyed by their names in the model."""
        first = len(self.model.encoder.layer) - self.layers
        names = tuple(f"encoder.layer.{i}." for i in range(first, len(self.model.encoder.layer)))
        return {k: v.detach().contiguous() for k, v in self.model.state_dict().items() if k.startswith(names)}

    def load_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Put saved tuned layers in place; a key set that is not this model's top layers is refused."""
        expected = set(self.state())
        if set(state) != expected:
            raise ValueError(
                f"the probe's tuned layers do not fit the sentence encoder: expected {len(expected)} tensors of "
                f"its top {self.layers} layers, got {len(state)} ({sorted(set(state) ^ expected)[:3]} differ)"
            )
        self.model.load_state_dict(dict(state), strict=False)
        self._cache.clear()

    def pooled(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean-pooled unit-norm embeddings ``(N, dim)``, with gradients to the tuned layers when enabled.

        Tuning calls it: it empties the cache of :meth:`embed`, whose embeddings the tuning makes stale.
        """
        self._cache.clear()
        return self._pooled(texts)

    def _pooled(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        weights = batch["attention_mask"].unsqueeze(-1).float()
        return F.normalize((hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0), dim=-1)

    @torch.no_grad()
    def embed(self, texts: Sequence[str], batch_size: int = 128) -> torch.Tensor:
        """:meth:`pooled` in inference, texts not in the cache in batches of similar length."""
        with self._lock:
            missing = sorted(dict.fromkeys(t for t in texts if t not in self._cache), key=len)
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                self._cache.update(zip(chunk, self._pooled(chunk)))
            out = torch.stack([self._cache[text] for text in texts]) if texts else torch.empty(0, self.dim)
            for text in texts:
                self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    @property
    def dim(self) -> int:
        """Width of the embeddings."""
        return int(self.model.config.hidden_size)


def drop_text_words(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with each word left out with probability ``rate`` (the text itself when none would be left)."""
    kept = [word for word in text.split() if rng.random() >= rate]
    return " ".join(kept) if kept else text


class CommandProbe(nn.Module):
    """Per-slot log-probabilities of a command from its sentence embedding.

    Args:
        labels: each slot's labels, e.g. ``{"task": suite tasks, "speed": ("slow", "normal", "fast")}``.
        dim: width of the sentence embeddings.
    """

    def __init__(self, labels: Mapping[str, Sequence[str]], dim: int, tuned_layers: int = 0) -> None:
        super().__init__()
        if tuned_layers < 0:
            raise ValueError(f"tuned_layers must be 0 (a linear probe of the frozen encoder) or more: {tuned_layers}")
        self.labels = {slot: tuple(values) for slot, values in labels.items()}
        self.heads = nn.ModuleDict({slot: nn.Linear(dim, len(values)) for slot, values in self.labels.items()})
        self.tuned_layers = tuned_layers
        self.encoder: TunedSentenceEncoder | None = None  # built on first use from the base encoder
        self._saved_layers: dict[str, torch.Tensor] | None = None  # the tuned layers read from disk, until then

    def embed(self, texts: Sequence[str], base: Any) -> torch.Tensor:
        """The embeddings the read-outs take: the base encoder's, or its tuned copy's (``(N, dim)``)."""
        if not self.tuned_layers:
            return torch.as_tensor(base.embed(list(texts)))
        if self.encoder is None:
            if self._saved_layers is None:
                raise ValueError("the probe's layers are not tuned yet: call tune() first")
            self.encoder = TunedSentenceEncoder(base, self.tuned_layers, self._saved_layers)
            self._saved_layers = None
        return self.encoder.embed(list(texts))

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task slot's labels."""
        return self.labels["task"]

    def log_probs(self, embeddings: torch.Tensor, slot: str = "task") -> torch.Tensor:
        """``(N, dim)`` sentence embeddings -> ``(N, labels)`` log-probabilities of one slot."""
        return self.heads[slot](embeddings.float()).log_softmax(-1)

    def label_indices(self, slot: str, values: Sequence[str]) -> list[int]:
        """Each label's index among the slot's; an unknown slot or label is refused, naming the known ones."""
        known = self.labels.get(slot)
        if known is None:
            raise ValueError(f"the probe has the slots {', '.join(self.labels)}; not {slot!r}")
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"the probe knows the {slot}s {', '.join(known)}; not {', '.join(map(repr, unknown))}")
        return [known.index(value) for value in values]

    def fit(
        self,
        embeddings: torch.Tensor,
        targets: Mapping[str, Sequence[str]],
        steps: int = 300,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-3,
    ) -> float:
        """Full-batch Adam on ``(embedding, label)`` pairs of every slot given (a few hundred take < 1 s)."""
        indices = {slot: torch.tensor(self.label_indices(slot, values)) for slot, values in targets.items()}
        optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay)
        loss = torch.zeros(())
        for _ in range(steps):
            optimizer.zero_grad()
            loss = sum(nn.functional.nll_loss(self.log_probs(embeddings, s), t) for s, t in indices.items())
            loss.backward()
            optimizer.step()
        return loss.item()

    def tune(
        self,
        base: Any,
        groups: Sequence[SlotTargets],
        steps: int,
        seed: int,
        word_dropout: float = 0.15,
        batch_size: int = 32,
        learning_rate: float = 5e-5,
        head_learning_rate: float = 2e-3,
        progress: bool = False,
    ) -> float:
        """Fine-tune the top ``tuned_layers`` of ``base`` with the read-outs on ``groups`` of (texts, slot labels).

        Each step reads ``batch_size`` texts drawn from all groups' texts together, words dropped at
        ``word_dropout`` (so no single word is learned as the cue), and sums each slot's cross-entropy over the
        texts that have it. The global random state is left as it was (the caller's training is unchanged).
        """
        if not self.tuned_layers:
            raise ValueError("a probe with tuned_layers=0 reads the frozen encoder: fit() it instead")
        rows: dict[str, dict[str, int]] = {}
        for texts, targets in groups:
            for slot, values in targets.items():
                for text, index in zip(texts, self.label_indices(slot, values)):
                    rows.setdefault(text, {})[slot] = index
        if not rows:
            raise ValueError("no labelled texts to tune the probe on")
        texts = sorted(rows)
        loss = torch.zeros(())
        with torch.random.fork_rng(devices=[]), torch_threads(1):  # small batches: one thread each is fastest
            torch.manual_seed(seed)
            self.encoder = TunedSentenceEncoder(base, self.tuned_layers)
            encoder_parameters = [p for m in self.encoder.tuned_modules() for p in m.parameters()]
            optimizer = torch.optim.AdamW([
                {"params": encoder_parameters, "lr": learning_rate},
                {"params": self.heads.parameters(), "lr": head_learning_rate},
            ], weight_decay=0.01)  # fmt: skip
            rng = random.Random(seed)
            self.encoder.tuned_modules().train()
            for _ in tqdm(range(steps), desc="tune the probe's encoder layers", disable=not progress):
                picked = [texts[rng.randrange(len(texts))] for _ in range(batch_size)]
                embeddings = self.encoder.pooled([drop_text_words(t, word_dropout, rng) for t in picked])
                loss = torch.zeros(())
                for slot in self.labels:
                    have = [i for i, t in enumerate(picked) if slot in rows[t]]
                    if have:
                        target = torch.tensor([rows[picked[i]][slot] for i in have])
                        loss = loss + F.nll_loss(self.log_probs(embeddings[have], slot), target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.encoder.tuned_modules().eval()
        return float(loss.detach())

    def save(self, directory: Path) -> None:
        """``probe.safetensors`` in ``directory``: read-outs and tuned layers (labels and layer count as metadata)."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        if self.tuned_layers:
            layers = self.encoder.state() if self.encoder is not None else self._saved_layers
            if layers is None:
                raise ValueError("the probe's layers are not tuned yet: call tune() before saving it")
            tensors |= {ENCODER_PREFIX + k: v for k, v in layers.items()}
        metadata = {"labels": json.dumps(self.labels), "tuned_layers": str(self.tuned_layers)}
        save_file(tensors, str(directory / PROBE_FILE), metadata=metadata)

    @classmethod
    def load(cls, directory: Path) -> CommandProbe | None:
        """The probe saved in ``directory``, or None when the module has none.

        A probe saved before speeds and repetitions had slots (one ``linear`` layer, ``tasks`` metadata)
        loads as a task-only probe.
        """
        path = directory / PROBE_FILE
        if not path.is_file():
            return None
        with safe_open(str(path), "pt") as handle:  # one read: the tensors and the labels
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
        if "labels" in metadata:
            labels = json.loads(metadata["labels"])
        else:
            labels = {"task": metadata.get("tasks", "").split(",")}
            state = {key.replace("linear.", "heads.task."): value for key, value in state.items()}
        layers = {k.removeprefix(ENCODER_PREFIX): v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
        state = {k: v for k, v in state.items() if not k.startswith(ENCODER_PREFIX)}
        dim = state[f"heads.{next(iter(labels))}.weight"].shape[1]
        probe = cls(labels, dim, int(metadata.get("tuned_layers", 0)))
        probe.load_state_dict(state)
        if probe.tuned_layers:
            held = {key.split(".")[2] for key in layers if key.startswith("encoder.layer.")}
            if len(held) != probe.tuned_layers or not all(key.startswith("encoder.layer.") for key in layers):
                raise ValueError(
                    f"{path} says its top {probe.tuned_layers} encoder layers are tuned but holds "
                    f"{len(held)} layers' tensors ({len(layers)} in all)"
                )
            probe._saved_layers = layers
        return probe
