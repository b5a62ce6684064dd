"""Shared fixtures: a tiny real demonstration dataset collected once per test session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: each keeps to one thread (torch, MKL, Mesa's llvmpipe and the Ray
    # workers it starts), or the workers' thread pools fight over the cores and the suite gets slower, not faster
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LP_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

TINY_TASKS = ("drawer-open", "pick-place")
TINY_CAMERAS = ("front", "wrist")
TINY_IMAGE_SIZE = 64


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray with 2 CPUs for the tests that use Ray workers, shut down at the session's end.

    Each Ray start costs ~8 s on a 2-core machine; the code under test reuses a Ray already initialised in
    its process (``ray_session``), as in a notebook. Tests run before it starts (in the default order,
    ``cortico demo``'s) start and stop a Ray of their own.
    """
    from cortico.ray_runtime import ray_session

    with ray_session(num_cpus=2):
        yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tasks x one expert episode, two cameras at 64 px, every step stored (read-only: copy to modify)."""
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos

    root = tmp_path_factory.mktemp("datasets") / "tiny"
    config = CollectionConfig(episodes_per_task=1, cameras=TINY_CAMERAS, image_size=TINY_IMAGE_SIZE)
    summary = collect_demos(root, list(TINY_TASKS), config, progress=False)
    assert not summary.short_tasks
    return root


@pytest.fixture
def dataset_copy(tiny_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    target = tmp_path / "copy"
    shutil.copytree(tiny_dataset, target)
    return target


@pytest.fixture(scope="session")
def mt10_small(tmp_path_factory: pytest.TempPathFactory, local_ray: None) -> Path:
    """MT10, two expert episodes per task, front + wrist cameras at 48 px, every step stored.

    Collected on two Ray workers (the same episodes as in one process: tests/envs/test_workers.py).
    """
    from cortico.envs import SUITES
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos
    from cortico.ray_runtime import RayOptions

    root = tmp_path_factory.mktemp("datasets") / "mt10_small"
    config = CollectionConfig(episodes_per_task=2, cameras=("front", "wrist"), image_size=48)
    summary = collect_demos(
        root, list(SUITES["mt10"]), config, progress=False, workers=2, ray=RayOptions(cpus_per_worker=1.0)
    )
    assert not summary.short_tasks
    return root


@pytest.fixture(scope="session")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TRC2 language module trained for a few steps (read-only: copy it to change it)."""
    from cortico.language.continual import ContinualConfig
    from cortico.language.module import train_module

    tiny = ContinualConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, learning_rate=3e-3, batch_size=16)
    out = tmp_path_factory.mktemp("language") / "module"
    # a linear probe of the frozen encoder, fitted in full in seconds (the tuned one: test_module.py)
    train_module(out, "mt10", steps=30, config=tiny, progress=False, evaluate=False, checkpoint_every=20,
                 probe_examples=400, probe_tuned_layers=0)  # fmt: skip
    return out


@pytest.fixture(scope="session", params=["dinov2", "dinov2-with-registers"])
def tiny_vision_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small DINOv2 (with and without register tokens) built from a config and saved as a hub folder would be."""
    import transformers

    names = {"dinov2": "Dinov2", "dinov2-with-registers": "Dinov2WithRegisters"}[request.param]
    config = getattr(transformers, f"{names}Config")(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=8, image_size=32
    )
    out = tmp_path_factory.mktemp(request.param)
    getattr(transformers, f"{names}Model")(config).save_pretrained(out)
    return out
