"""From observations to percepts: one pipeline for training batches, the agent loop and the real arm.

``Perception.perceive_batch`` takes the tensors a :class:`~cortico.envs.dataset.keyframe_dataset.KeyframeDataset`
batch carries; ``Perception.perceive`` turns one live :class:`~cortico.envs.contract.Observation` into the
same tensors first, so both paths share every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cortico.envs.cameras import WRIST_CAMERA
from cortico.envs.contract import Observation
from cortico.perception.gaze import GazeModel, GazeOutput, fixation_to_world
from cortico.perception.keypoints import (
    KeypointViews,
    farthest_point_sample,
    project_to_cameras,
    project_to_virtual,
)
from cortico.perception.point_cloud import fuse_batch
from cortico.perception.text_encoder import TextEncoder, TextFeatures
from cortico.perception.virtual_views import DEFAULT_VIEWS, VirtualViewRenderer, VirtualViews
from cortico.perception.workspace import WorkspaceBounds


@dataclass(frozen=True)
class PerceptionConfig:
    """What the pipeline computes.

    Attributes:
        bounds: workspace box for cropping and for the virtual views' cube.
        views: virtual orthographic views.
        view_size: virtual view size in pixels.
        num_keypoints: 3D keypoints sampled per observation (0 disables them).
        keypoint_tolerance: metres within which a keypoint counts as visible in a view.
        zoom: zoom factor of the second-stage view around the fixation (0 disables it).
        cameras: real cameras fused into the cloud (default: all of the observation's).
    """

    bounds: WorkspaceBounds = field(default_factory=WorkspaceBounds)
    views: tuple[str, ...] = DEFAULT_VIEWS
    view_size: int = 128
    num_keypoints: int = 32
    keypoint_tolerance: float = 0.01
    zoom: float = 4.0
    cameras: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Percept:
    """Everything perception produces for a batch (``B`` samples)."""

    views: VirtualViews
    keypoints: torch.Tensor | None  # (B, K, 3)
    keypoint_views: KeypointViews | None  # real cameras, then virtual views
    text: TextFeatures | None
    gaze: GazeOutput | None
    fixation_world: torch.Tensor | None  # (B, 3)
    zoomed_views: VirtualViews | None


def observation_to_batch(observation: Observation, cameras: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The tensors of a one-sample batch, with the keys and layout of ``KeyframeDataset`` items."""
    observation.validate()
    names = cameras or tuple(observation.cameras)
    frames = [observation.cameras[name] for name in names]
    stack = lambda key, dtype=None: torch.from_numpy(np.stack([getattr(f, key) for f in frames]))[None]  # noqa: E731
    return {
        "rgb": stack("rgb"),
        "depth": stack("depth"),
        "points": stack("points"),
        "intrinsics": stack("intrinsics").float(),
        "extrinsics": stack("extrinsics").float(),
        "gripper_pose": torch.from_numpy(np.asarray(observation.gripper_pose, dtype=np.float32))[None],
        "instruction": [observation.instruction],
    }


class Perception:
    """The perception pipeline (see module doc).

    Args:
        config: what to compute.
        text_encoder: encodes instructions (None: no text features).
        gaze_model: frozen gaze model (None: no gaze, and the zoomed view centres on the gripper).
    """

    def __init__(
        self,
        config: PerceptionConfig | None = None,
        text_encoder: TextEncoder | None = None,
        gaze_model: GazeModel | None = None,
    ) -> None:
        self.config = config or PerceptionConfig()
        self.renderer = VirtualViewRenderer(self.config.views, self.config.view_size, self.config.bounds)
        self.text_encoder = text_encoder
        self.gaze_model = gaze_model

    def perceive(self, observation: Observation, generator: torch.Generator | None = None) -> Percept:
        """Percepts of one live observation (a batch of one)."""
        cameras = self.config.cameras or tuple(observation.cameras)
        return self.perceive_batch(observation_to_batch(observation, cameras), cameras, generator)

    @torch.no_grad()
    def perceive_batch(
        self, batch: dict[str, Any], cameras: tuple[str, ...], generator: torch.Generator | None = None
    ) -> Percept:
        """Percepts of a ``KeyframeDataset``-style batch; ``cameras`` names its V cameras.

        The batch holds ``rgb``, ``depth``, ``points`` ``(B, V, H, W, ...)``, ``intrinsics``, ``extrinsics``,
        ``gripper_pose`` and ``instruction``.
        """
        cameras = tuple(cameras)
        if len(cameras) != batch["rgb"].shape[1]:
            raise ValueError(f"{len(cameras)} camera names for {batch['rgb'].shape[1]} cameras in the batch")
        points, colors, mask = fuse_batch(batch["points"], batch["rgb"], batch["depth"], self.config.bounds)
        views = self.renderer.render(points, colors, mask)
        keypoints = keypoint_views = None
        if self.config.num_keypoints:
            index = farthest_point_sample(points, self.config.num_keypoints, mask, generator)
            keypoints = torch.gather(points, 1, index[..., None].expand(-1, -1, 3))
            real = project_to_cameras(
                keypoints, batch["intrinsics"], batch["extrinsics"], batch["depth"], cameras,
                self.config.keypoint_tolerance,
            )  # fmt: skip
            keypoint_views = real.cat(
                project_to_virtual(keypoints, views, self.renderer, self.config.keypoint_tolerance)
            )
        text = self.text_encoder.encode(list(batch["instruction"])) if self.text_encoder is not None else None
        gaze, fixation_world = self._gaze(batch, cameras, text)
        zoomed = None
        if self.config.zoom:
            focus = fixation_world if fixation_world is not None else batch["gripper_pose"][:, :3].float()
            center, half = self.renderer.zoomed_cube(focus, self.config.zoom)
            zoomed = self.renderer.render(points, colors, mask, center, half)
        return Percept(views, keypoints, keypoint_views, text, gaze, fixation_world, zoomed)

    def _gaze(
        self, batch: dict[str, Any], cameras: tuple[str, ...], text: TextFeatures | None
    ) -> tuple[GazeOutput | None, torch.Tensor | None]:
        """Run the frozen gaze model on the wrist view; the fixation's 3D point falls back to the gripper."""
        if self.gaze_model is None:
            return None, None
        if WRIST_CAMERA not in cameras:
            raise ValueError(f"the gaze model reads the {WRIST_CAMERA!r} camera; this batch has {cameras}")
        wrist = cameras.index(WRIST_CAMERA)
        config = self.gaze_model.config
        images = batch["rgb"][:, wrist].permute(0, 3, 1, 2).float() / 255.0
        native = images.shape[-1]
        if native != config.image_size:
            images = F.interpolate(images, size=(config.image_size, config.image_size), mode="area")
        embedding = None
        if config.text_dim:
            if text is None:
                raise ValueError("the gaze model is conditioned on the instruction; give Perception a text encoder")
            embedding = text.pooled
        static = None
        if config.use_static_view:
            static = batch["rgb"][:, cameras.index("front")].permute(0, 3, 1, 2).float() / 255.0
            static = F.interpolate(static, size=(config.image_size, config.image_size), mode="area")
        output = self.gaze_model(images, embedding, static)
        fixation = (output.fixation + 0.5) * (native / config.image_size) - 0.5  # in native wrist pixels
        world, valid = fixation_to_world(
            fixation, batch["depth"][:, wrist], batch["intrinsics"][:, wrist], batch["extrinsics"][:, wrist]
        )
        world = torch.where(valid[:, None], world, batch["gripper_pose"][:, :3].float())
        return output, world
