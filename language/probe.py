"""The command parser's second expert: a linear read-out of the packaged sentence encoder (MiniLM).

TRC2 is trained from scratch on the project's own commands, so a word it never saw carries no meaning
for it; the pretrained sentence encoder knows such words. The probe maps the encoder's embedding of a
command to log-probabilities over the suite's tasks, and the parser multiplies both experts' task
distributions (a product of experts). It is fitted on the same training commands as TRC2, updated by
online learning, and saved beside the model as ``probe.safetensors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

PROBE_FILE = "probe.safetensors"


class CommandProbe(nn.Module):
    """Task log-probabilities of a command from its sentence embedding."""

    def __init__(self, tasks: Sequence[str], dim: int) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.linear = nn.Linear(dim, len(self.tasks))

    def log_probs(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(N, dim)`` sentence embeddings -> ``(N, tasks)`` log-probabilities."""
        return self.linear(embeddings.float()).log_softmax(-1)

    def fit(
        self,
        embeddings: torch.Tensor,
        tasks: Sequence[str],
        steps: int = 300,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-3,
    ) -> float:
        """Full-batch Adam on ``(embedding, task)`` pairs (a few hundred examples take well under a second)."""
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise ValueError(f"the probe knows the tasks {', '.join(self.tasks)}; not {', '.join(unknown)}")
        targets = torch.tensor([self.tasks.index(t) for t in tasks])
        optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay)
        loss = torch.zeros(())
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.nll_loss(self.log_probs(embeddings), targets)
            loss.backward()
            optimizer.step()
        return loss.item()

    def save(self, directory: Path) -> None:
        """``probe.safetensors`` in ``directory`` (the task order is stored in its metadata)."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / PROBE_FILE), metadata={"tasks": ",".join(self.tasks)})

    @classmethod
    def load(cls, directory: Path) -> CommandProbe | None:
        """The probe saved in ``directory``, or None when the module has none."""
        path = directory / PROBE_FILE
        if not path.is_file():
            return None
        with safe_open(str(path), "pt") as handle:  # one read: the tensors and the task order
            tasks = (handle.metadata() or {}).get("tasks", "").split(",")
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
        probe = cls(tasks, state["linear.weight"].shape[1])
        probe.load_state_dict(state)
        return probe
