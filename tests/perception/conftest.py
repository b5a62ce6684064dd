"""Fixtures for perception tests: a small real MT10 dataset and a live observation."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mt10_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MT10, two expert episodes per task, front + wrist cameras at 48 px, every step stored."""
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos

    root = tmp_path_factory.mktemp("datasets") / "mt10_small"
    config = CollectionConfig(episodes_per_task=2, cameras=("front", "wrist"), image_size=48)
    summary = collect_demos(
        root, list(__import__("cortico.envs", fromlist=["SUITES"]).SUITES["mt10"]), config, progress=False
    )
    assert not summary.short_tasks
    return root


@pytest.fixture(scope="session")
def live_observation():
    """One rendered observation of pick-place with the full default rig at 96 px."""
    from cortico.envs.metaworld_backend import MetaWorldEnv

    env = MetaWorldEnv("pick-place", image_size=96)
    observation = env.reset(seed=3)
    env.close()
    return observation
