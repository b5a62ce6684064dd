"""Fixtures for policy tests: a one-episode dataset and tiny policy configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from cortico.policies.view_transformer import ViewTransformerConfig

TINY_VIEW = ViewTransformerConfig(image_size=48, patch=8, dim=48, heads=4, intra_layers=1, cross_layers=1)
CAMERAS = ("front", "left_shoulder", "right_shoulder", "wrist")


@pytest.fixture(scope="session")
def one_episode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One drawer-close expert episode, four cameras at 64 px, keyframe frames only."""
    from cortico.envs.dataset.collect import CollectionConfig, collect_demos

    root = tmp_path_factory.mktemp("datasets") / "one_episode"
    config = CollectionConfig(episodes_per_task=1, cameras=CAMERAS, image_size=64, store="keyframes")
    collect_demos(root, ["drawer-close"], config, progress=False)
    return root


@pytest.fixture(scope="session")
def one_episode_batch(one_episode):
    """Every keyframe sample of the episode as one batch."""
    from cortico.envs.dataset.keyframe_dataset import KeyframeDataset

    dataset = KeyframeDataset(one_episode)
    return default_collate([dataset[i] for i in range(len(dataset))])


def tiny_configs():
    """Small configurations of the three policy types (for speed; the architecture is the full one)."""
    from cortico.perception.gaze import GazeConfig
    from cortico.policies.cnn_bc import CNNConfig
    from cortico.policies.cortical import CorticalConfig, RVTConfig

    return {
        "cortical": CorticalConfig(cameras=CAMERAS, image_size=64, coarse=TINY_VIEW, fine=TINY_VIEW, num_keypoints=8,
                                   gaze=GazeConfig(image_size=64, width=8)),
        "rvt": RVTConfig(cameras=CAMERAS, image_size=64, coarse=TINY_VIEW, fine=TINY_VIEW),
        "cnn": CNNConfig(cameras=CAMERAS, image_size=64, width=32, hidden=64),
    }  # fmt: skip


def make_policy(kind: str):
    from cortico.policies.base import POLICIES

    torch.manual_seed(0)
    return POLICIES.get(kind)(tiny_configs()[kind])
