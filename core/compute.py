"""How much of the CPU torch uses: small models train faster, and share a busy machine better, on one thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the previous setting.

    A model of a few hundred thousand parameters gains nothing from more threads, and on a machine whose
    cores are busy with other work torch's spinning threads make it many times slower (measured: 0.25 s
    per language-module step on one thread, 6.4 s on two threads beside another busy process).
    """
    if count < 1:
        raise ValueError(f"thread count must be >= 1, got {count}")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
