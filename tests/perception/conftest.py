"""Fixtures for perception tests: a live observation (the MT10 dataset fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def live_observation():
    """One rendered observation of pick-place with the full default rig at 96 px."""
    from cortico.envs.metaworld_backend import MetaWorldEnv

    env = MetaWorldEnv("pick-place", image_size=96)
    observation = env.reset(seed=3)
    env.close()
    return observation
