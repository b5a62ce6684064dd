"""torch_threads: the thread count inside the block, restored after it (even on an error)."""

from __future__ import annotations

import pytest
import torch

from cortico.compute import torch_threads


def test_thread_count_is_set_and_restored() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=">= 1"), torch_threads(0):
        pass
