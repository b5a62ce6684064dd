"""Offline keyframe errors: what a policy predicts at the observations where the expert started a keyframe.

Closed-loop success says how often a policy solves a task, not why it fails. Comparing the predicted
keyframe with the expert's on recorded demos separates imprecise translation from wrong gripper states,
and errors as large on the training demos as on unseen ones mark an underfitted policy, not an overfitted one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cortico.policies.base import KeyframePolicy


def keyframe_errors(policy: KeyframePolicy, dataset: Dataset, batch_size: int = 16) -> dict[str, dict[str, Any]]:
    """Per task and over ``"all"``: samples, median translation error (cm), shares within 2 and 5 cm, gripper agreement.

    ``dataset`` yields ``KeyframeDataset`` samples (``action`` is the expert's next keyframe).
    """
    errors: dict[str, list[float]] = defaultdict(list)
    gripper: dict[str, list[bool]] = defaultdict(list)
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size):
            for action, target, task in zip(policy.predict(batch), batch["action"], batch["task"]):
                errors[task].append(float(np.linalg.norm(np.asarray(action.position) - target[:3].numpy())))
                gripper[task].append(bool(action.gripper_open) == bool(target[7] > 0.5))
    policy.train(was_training)
    if not errors:
        raise ValueError("the dataset has no keyframe samples to compare with")
    tasks = {task: _summary(errors[task], gripper[task]) for task in sorted(errors)}
    tasks["all"] = _summary([e for v in errors.values() for e in v], [g for v in gripper.values() for g in v])
    return tasks


def _summary(errors: list[float], gripper: list[bool]) -> dict[str, Any]:
    e = np.asarray(errors)
    return {
        "samples": len(e),
        "median_cm": 100 * float(np.median(e)),
        "within_2cm": float(np.mean(e < 0.02)),
        "within_5cm": float(np.mean(e < 0.05)),
        "gripper_agreement": float(np.mean(gripper)),
    }
