"""Memory policies by name: ``make_memory("curvature", budget=80)``."""

from __future__ import annotations

from typing import Any

from cortico.registry import Registry

MEMORIES: Registry[type] = Registry("memory policy")
MEMORIES.register("cortico", "cortico.memory.hippocampus:CorticoMemory")  # curvature + hippocampal notes
MEMORIES.register("curvature", "cortico.memory.buffers:CurvatureMemory")
MEMORIES.register("uniform", "cortico.memory.buffers:UniformMemory")
MEMORIES.register("fifo", "cortico.memory.buffers:FifoMemory")
MEMORIES.register("merge", "cortico.memory.buffers:MergeMemory")


def make_memory(name: str, budget: int, **kwargs: Any) -> Any:
    """A memory policy with a token budget (``text_encoder`` goes to the policies that use one)."""
    memory_class = MEMORIES.get(name)
    if name != "cortico":
        kwargs.pop("text_encoder", None)
    return memory_class(budget, **kwargs)
