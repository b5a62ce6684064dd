"""Gymnasium registration and API compliance of every embedded task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cortico.envs
from cortico.envs import TASKS, gym_id


def test_every_task_is_registered():
    for task in TASKS:
        assert gym_id(task) in gym.registry, f"{gym_id(task)} is not registered"
    assert gym.spec(gym_id("drawer-open")).max_episode_steps == 25


# keyframe actions are metric world positions, not the normalised [-1, 1] boxes RL libraries prefer
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space:UserWarning")
@pytest.mark.parametrize("task", ["drawer-open", "pick-place"])
def test_check_env_passes(task):
    env = gym.make(gym_id(task), image_size=32, cameras="front,wrist")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_keyframe_step_and_render():
    env = gym.make(gym_id("reach"), image_size=32, cameras=["front", "wrist"], render_mode="rgb_array")
    obs, info = env.reset(seed=7)
    assert env.observation_space.contains(obs)
    assert info["episode_seed"] == 7
    action = np.concatenate([obs["gripper_pose"], [1.0, 0.0]]).astype(np.float32)
    action[2] += 0.05
    obs, reward, terminated, truncated, info = env.step(action)
    assert info["reached"] and reward in (0.0, 1.0) and not truncated
    assert env.render().shape == (32, 64, 3)
    env.close()


def test_same_seed_same_episode_as_the_backend():
    env = gym.make(gym_id("push"), image_size=32, cameras="front")
    first, _ = env.reset(seed=3)
    backend = cortico.envs.backends.make_env("push", cameras=["front"], image_size=32)
    direct = backend.reset(seed=3)
    np.testing.assert_array_equal(first["cameras"]["front"]["rgb"], direct.cameras["front"].rgb)
    assert first["instruction"] == direct.instruction
    backend.close()
    env.close()


def test_delta_control_and_bad_options():
    env = gym.make(gym_id("reach"), image_size=32, cameras="front", control="delta", max_episode_steps=3)
    env.reset(seed=0)
    _, _, _, truncated, _ = env.step(env.action_space.sample())
    assert not truncated
    env.close()
    with pytest.raises(ValueError, match="control must be"):
        gym.make(gym_id("reach"), control="joint")
    with pytest.raises(KeyError, match="unknown environment backend"):
        gym.make(gym_id("reach"), backend="isaac")
