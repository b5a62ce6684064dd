"""The command parser's second expert: linear read-outs of the packaged sentence encoder (MiniLM).

TRC2 is trained from scratch on the project's own commands, so a word it never saw carries no meaning
for it; the pretrained sentence encoder knows such words. The probe maps the encoder's embedding of a
command to log-probabilities over each slot of the command grammar (the task, the speed, the number of
repetitions), and the parser multiplies both experts' distributions slot by slot (a product of experts).
It is fitted on the same training commands as TRC2, updated by online learning, and saved beside the
model as ``probe.safetensors``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

PROBE_FILE = "probe.safetensors"


class CommandProbe(nn.Module):
    """Per-slot log-probabilities of a command from its sentence embedding.

    Args:
        labels: each slot's labels, e.g. ``{"task": suite tasks, "speed": ("slow", "normal", "fast")}``.
        dim: width of the sentence embeddings.
    """

    def __init__(self, labels: Mapping[str, Sequence[str]], dim: int) -> None:
        super().__init__()
        self.labels = {slot: tuple(values) for slot, values in labels.items()}
        self.heads = nn.ModuleDict({slot: nn.Linear(dim, len(values)) for slot, values in self.labels.items()})

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task slot's labels."""
        return self.labels["task"]

    def log_probs(self, embeddings: torch.Tensor, slot: str = "task") -> torch.Tensor:
        """``(N, dim)`` sentence embeddings -> ``(N, labels)`` log-probabilities of one slot."""
        return self.heads[slot](embeddings.float()).log_softmax(-1)

    def fit(
        self,
        embeddings: torch.Tensor,
        targets: Mapping[str, Sequence[str]],
        steps: int = 300,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-3,
    ) -> float:
        """Full-batch Adam on ``(embedding, label)`` pairs of every slot given (a few hundred take < 1 s)."""
        indices = {}
        for slot, values in targets.items():
            known = self.labels.get(slot)
            if known is None:
                raise ValueError(f"the probe has the slots {', '.join(self.labels)}; not {slot!r}")
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise ValueError(f"the probe knows the {slot}s {', '.join(known)}; not {', '.join(unknown)}")
            indices[slot] = torch.tensor([known.index(v) for v in values])
        optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay)
        loss = torch.zeros(())
        for _ in range(steps):
            optimizer.zero_grad()
            loss = sum(nn.functional.nll_loss(self.log_probs(embeddings, s), t) for s, t in indices.items())
            loss.backward()
            optimizer.step()
        return loss.item()

    def save(self, directory: Path) -> None:
        """``probe.safetensors`` in ``directory`` (the slots' labels are stored in its metadata)."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / PROBE_FILE), metadata={"labels": json.dumps(self.labels)})

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
        dim = state[f"heads.{next(iter(labels))}.weight"].shape[1]
        probe = cls(labels, dim)
        probe.load_state_dict(state)
        return probe
