"""Freshly placed simulator scenes: cheap, varied training frames for the probe frame encoder.

A demo dataset holds few object placements (12 episodes per task by default), so an encoder trained on its
frames alone learns each task's average object position rather than where the object is; the frames right
after a reset (the arm at rest, the objects where the task placed them) cost ~25 ms each to render and add
as many placements as wanted. Their seeds start at ``SCENE_SEED_OFFSET``, far from demonstration seeds (below
``EVALUATION_SEED_OFFSET``) and evaluation seeds (from it), so no scene repeats a benchmark episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCENE_SEED_OFFSET = 3_000_000


def reset_scenes(
    tasks: Sequence[str],
    per_task: int,
    *,
    camera: str = "front",
    image_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first observation of ``per_task`` new placements of every task.

    Returns ``images (N, H, W, 3) uint8``, the probe encoder's targets ``(N, 10)`` (gripper xyz, gripper
    open, object xyz, goal xyz, as :func:`cortico.memory.bench.stream_states` gives them for demo frames) and
    task labels ``(N,)`` (indices into the task catalogue).
    """
    from tqdm.auto import tqdm

    from cortico.envs.metaworld_backend import MetaWorldEnv  # imports MuJoCo: only when scenes are asked for
    from cortico.envs.task_catalog import TASKS, get_task

    if per_task < 0:
        raise ValueError(f"per_task must be >= 0, got {per_task}")
    names = list(TASKS)
    images, states, labels = [], [], []
    for number, task in enumerate(tqdm(tasks, desc="render scenes", disable=not progress)):
        name = get_task(task).name
        env = MetaWorldEnv(name, cameras=[camera], image_size=image_size)
        try:
            for index in range(per_task):
                observation = env.reset(seed=SCENE_SEED_OFFSET + (seed * len(tasks) + number) * per_task + index)
                state = env.state
                images.append(observation.cameras[camera].rgb)
                states.append(np.concatenate([observation.gripper_pose[:3], [observation.gripper_open],
                                              state[4:7], state[36:39]]))  # fmt: skip
                labels.append(names.index(name))
        finally:
            env.close()
    if not images:
        return np.zeros((0, image_size, image_size, 3), np.uint8), np.zeros((0, 10), np.float32), np.zeros(0, int)
    return np.stack(images), np.array(states, dtype=np.float32), np.array(labels)
