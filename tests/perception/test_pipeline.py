"""The perception pipeline: one path for live observations and dataset batches."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from cortico.envs.dataset.index import DatasetIndex
from cortico.envs.dataset.keyframe_dataset import KeyframeDataset
from cortico.envs.metaworld_backend import MetaWorldEnv
from cortico.perception.gaze import GazeConfig, GazeModel
from cortico.perception.pipeline import Perception, PerceptionConfig, observation_to_batch


def test_live_observation_and_dataset_sample_give_the_same_batch(mt10_small):
    dataset = KeyframeDataset(mt10_small)
    entry = DatasetIndex.load(mt10_small).episodes[0]
    env = MetaWorldEnv(entry.task, cameras=list(dataset.cameras), image_size=48)
    live = observation_to_batch(env.reset(seed=entry.seed), dataset.cameras)
    env.close()
    stored = next(iter(DataLoader(dataset, batch_size=1)))  # step 0 of episode 0
    for key in ("rgb", "depth", "points", "intrinsics", "extrinsics", "gripper_pose"):
        assert torch.allclose(live[key].float(), stored[key].float(), atol=1e-5), key
    assert live["instruction"] == stored["instruction"]


def test_percepts_of_a_batch(mt10_small):
    dataset = KeyframeDataset(mt10_small)
    batch = next(iter(DataLoader(dataset, batch_size=3, shuffle=False)))
    gaze = GazeModel(GazeConfig(image_size=48, text_dim=0)).eval().requires_grad_(False)
    perception = Perception(PerceptionConfig(view_size=64, num_keypoints=16, zoom=4.0), gaze_model=gaze)
    first = perception.perceive_batch(batch, dataset.cameras, torch.Generator().manual_seed(1))
    again = perception.perceive_batch(batch, dataset.cameras, torch.Generator().manual_seed(1))
    assert first.views.rgb.shape == (3, 3, 3, 64, 64)
    assert first.keypoints.shape == (3, 16, 3) and torch.equal(first.keypoints, again.keypoints)
    assert first.keypoint_views.view_names == ("front", "wrist", "virtual:top", "virtual:front", "virtual:left")
    assert first.gaze.fixation.shape == (3, 2) and first.fixation_world.shape == (3, 3)
    assert first.zoomed_views.half_size[0] < first.views.half_size[0]
    assert first.text is None


def test_perceive_one_observation_with_text(live_observation):
    from cortico.perception.text_encoder import TextEncoder

    perception = Perception(PerceptionConfig(view_size=48, num_keypoints=8, zoom=0), text_encoder=TextEncoder())
    percept = perception.perceive(live_observation)
    assert percept.views.rgb.shape[:2] == (1, 3)
    assert percept.text.pooled.shape == (1, 384) and percept.zoomed_views is None
