"""Cortical Policy: a dual-stream view transformer, and RVT as its single-stream special case.

Static ("ventral") stream: the coarse stage renders virtual views of the whole workspace; their patch
tokens, language tokens and 3D keypoint tokens go through a view transformer. Each keypoint token carries
the features sampled at that keypoint's pixel in every view where it is visible, and a cross-view InfoNCE
loss pulls together the features of the same keypoint seen from different views (geometric consistency).

Dynamic ("dorsal") stream: the frozen, position-aware gaze model looks at the wrist image; foveated crops
around its fixation become tokens of a fine stage that renders zoomed views around a focus point
(RVT-2's coarse-to-fine). At inference the focus is the coarse prediction (``gaze_focus`` moves it onto
the gaze ray when the gaze model sees the target); in training it is the target plus noise. The position
is decoded from the coarse and the fine heatmaps together (``fine_weight``), a product of experts that is
more precise than either stage alone (docs/policies.md has the measurement).

The rotation, gripper and collision heads read the last stage's global features and its local features at
the target's pixel. ``RVTPolicy`` is the coarse stage alone, without keypoints: views + language only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cortico.envs.cameras import WRIST_CAMERA
from cortico.envs.contract import KeyframeAction
from cortico.perception.gaze import GazeConfig, GazeModel, fixation_to_world, foveated_crops
from cortico.perception.keypoints import farthest_point_sample, project_to_virtual
from cortico.perception.text_encoder import TextFeatures
from cortico.perception.virtual_views import HeatmapTerm, VirtualViewRenderer, VirtualViews, most_likely_point
from cortico.policies.action_heads import (
    DiscreteActionHead,
    decode_actions,
    discrete_losses,
    discrete_targets,
    heatmap_loss,
    heatmap_probabilities,
    heatmap_targets,
)
from cortico.policies.augmentation import SceneAugmentation
from cortico.policies.base import KeyframePolicy, PolicyConfig, proprioception
from cortico.policies.scene import Scene, build_scene
from cortico.policies.view_transformer import (
    ATTENTION_DTYPES,
    ViewTransformer,
    ViewTransformerConfig,
    sample_features,
    tokens_to_maps,
)


@dataclass(frozen=True)
class CorticalConfig(PolicyConfig):
    """Cortical Policy settings (see module doc).

    Attributes:
        views: virtual views of both stages.
        coarse, fine: view transformers of the coarse (static) and fine (dynamic) stages.
        num_keypoints: keypoint tokens in the coarse stage (0: none).
        static_stream: run the coarse stage (without it the fine stage zooms where the gaze points).
        dynamic_stream: run the gaze-driven fine stage.
        consistency_weight: weight of the cross-view keypoint consistency loss (0 disables it).
        consistency_temperature: InfoNCE temperature.
        zoom: the fine stage's cube is this many times smaller than the workspace cube.
        heatmap_sigma: Gaussian target width in view pixels.
        fine_heatmap_sigma: the fine stage's target width in its own (zoomed) pixels; None: ``heatmap_sigma``,
            which at zoom 4 is a quarter of the coarse stage's width in metres (0.6 cm against 2.3 cm).
        focus_noise: training focus = target + uniform noise of this many metres per axis. Wide (8 cm, with a
            12.5 cm half-cube at zoom 4) so the fine stage learns to find a target the coarse point missed by
            several centimetres (at 3 cm it learned "the target is at the centre": MT10 0.68 -> 0.79).
        gaze_focus: at inference, move the focus onto the gaze ray when the gaze model sees the target
            (off by default: it moved the focus away from the target more often than towards it).
        fine_weight: weight of the fine stage's log-heatmaps against the coarse stage's in the joint decoding;
            4 was chosen closed loop on validation episodes (0.5, the offline choice, did 3 points worse on
            average over five checkpoints' evaluation episodes; BENCHMARKS.md).
        carry_fine_weight: the fine stage's weight for decisions taken with the gripper closed (carries, pushes,
            presses); None: ``fine_weight``. On long carries the fine stage placed the target near the held
            object and outvoted a closer coarse stage (BENCHMARKS.md, stage points).
        free_space_fine_weight: the most the fine stage weighs when the coarse point lies more than
            ``free_space_clearance`` metres from every point of the scene (an approach above an object, a carry,
            a pull): the fine stage sees only its cube, and a target in free space is placed by things the cube
            may not hold (the drawer below, the hole the peg goes to). 1 was chosen on validation episodes (MT10
            +2.2 points on the evaluation episodes of three trainings; BENCHMARKS.md). None: no cap, as in
            checkpoints saved before 2026-12-05 (``EARLIER_VALUES``; ``--inference`` turns it on for them).
        free_space_clearance: the distance (m) that makes a coarse point "in free space" (5 cm: offline, the joint
            decoding beat the coarse stage alone on fewer than a third of such keyframes).
        attention_precision: precision of the view transformers' attention layers when deciding ("float32" as
            trained, or "bfloat16": faster on CPUs with native bfloat16; training always runs in float32).
        coarse_context: the fine stage also reads the coarse stage's global features (one token), so that a
            target placed by something outside the zoomed cube (peg-insert's hole, a goal marker far from the
            held object) is not guessed from the zoomed views alone. Needs both streams.
        fovea_spans: widths (wrist pixels) of the foveated crops; fovea_size: their resolution.
        gaze: the frozen gaze model's configuration (its weights are part of the policy's).
        augmentation: SE(3) scene augmentation ranges.
    """

    type: ClassVar[str] = "cortical"
    inference_settings: ClassVar[tuple[str, ...]] = (
        "gaze_focus", "fine_weight", "carry_fine_weight", "free_space_fine_weight", "free_space_clearance",
        "attention_precision",
    )  # fmt: skip
    views: tuple[str, ...] = ("top", "front", "left")
    coarse: ViewTransformerConfig = field(default_factory=ViewTransformerConfig)
    fine: ViewTransformerConfig = field(default_factory=lambda: ViewTransformerConfig(intra_layers=1, cross_layers=2))
    num_keypoints: int = 24
    static_stream: bool = True
    dynamic_stream: bool = True
    consistency_weight: float = 0.1
    consistency_temperature: float = 0.1
    zoom: float = 4.0
    heatmap_sigma: float = 1.5
    fine_heatmap_sigma: float | None = None
    focus_noise: float = 0.08
    gaze_focus: bool = False
    fine_weight: float = 4.0
    carry_fine_weight: float | None = None
    free_space_fine_weight: float | None = 1.0
    free_space_clearance: float = 0.05
    attention_precision: str = "float32"
    coarse_context: bool = False
    fovea_spans: tuple[int, ...] = (16, 40)
    fovea_size: int = 32
    gaze: GazeConfig = field(default_factory=GazeConfig)
    augmentation: SceneAugmentation = field(default_factory=SceneAugmentation)

    def without_augmentation(self) -> CorticalConfig:
        """No SE(3) scene motion in training."""
        return dataclasses.replace(self, augmentation=SceneAugmentation.none())

    def __post_init__(self) -> None:
        for name in ("coarse", "fine"):  # the view transformers read what proprioception() gives
            object.__setattr__(self, name, dataclasses.replace(getattr(self, name), proprio_dim=self.proprio_dim))
        if not (self.static_stream or self.dynamic_stream):
            raise ValueError("at least one stream (static or dynamic) must be on")
        for name, stage in (("coarse", self.coarse), ("fine", self.fine)):
            if stage.num_views != len(self.views):
                raise ValueError(f"the {name} stage expects {stage.num_views} views, but views are {self.views}")
        if self.dynamic_stream and WRIST_CAMERA not in self.cameras:
            raise ValueError(f"the dynamic stream reads the {WRIST_CAMERA!r} camera; cameras are {self.cameras}")
        if self.coarse_context and not (self.static_stream and self.dynamic_stream):
            raise ValueError("coarse_context feeds the coarse summary to the fine stage: it needs both streams")
        if self.zoom < 1:
            raise ValueError(f"zoom must be >= 1, got {self.zoom}")
        for name in ("carry_fine_weight", "free_space_fine_weight"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {getattr(self, name)}")
        if self.free_space_clearance <= 0:
            raise ValueError(f"free_space_clearance must be > 0, got {self.free_space_clearance}")
        if self.fine_heatmap_sigma is not None and self.fine_heatmap_sigma <= 0:
            raise ValueError(f"fine_heatmap_sigma must be > 0 or None, got {self.fine_heatmap_sigma}")
        if self.fine_weight < 0:
            raise ValueError(f"fine_weight must be >= 0, got {self.fine_weight}")
        if self.attention_precision not in ATTENTION_DTYPES:
            raise ValueError(
                f"attention_precision must be one of {sorted(ATTENTION_DTYPES)}, got {self.attention_precision!r}"
            )
        if self.dynamic_stream and self.gaze.text_dim and self.gaze.text_model != self.text_model:
            raise ValueError(
                f"the gaze model reads {self.gaze.text_model!r} instruction embeddings but the policy uses "
                f"{self.text_model!r}; train both with the same text model"
            )


@dataclass(frozen=True)
class RVTConfig(CorticalConfig):
    """RVT: the coarse stage only, virtual views + language (no keypoints, no gaze, no zoom)."""

    type: ClassVar[str] = "rvt"
    inference_settings: ClassVar[tuple[str, ...]] = ("attention_precision",)
    num_keypoints: int = 0
    dynamic_stream: bool = False
    consistency_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_keypoints or self.dynamic_stream or self.consistency_weight or not self.static_stream:
            raise ValueError("an RVT policy is the static views + language stage alone; use type 'cortical' for more")


class FoveaEncoder(nn.Module):
    """Foveated crops ``(B, S, 3, s, s)`` -> tokens ``(B, S * 16, D)`` (a 4x4 grid per scale)."""

    def __init__(self, scales: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, dim // 2, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(4),
        )  # fmt: skip
        self.scale_embedding = nn.Parameter(torch.zeros(1, scales, 1, dim))
        nn.init.normal_(self.scale_embedding, std=0.02)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Encode every scale's crop into a 4x4 grid of tokens."""
        batch, scales = crops.shape[:2]
        features = self.net(crops.flatten(0, 1) * 2 - 1).flatten(2).transpose(1, 2)  # (B*S, 16, D)
        return (features.view(batch, scales, 16, -1) + self.scale_embedding).flatten(1, 2)


def keypoint_consistency(features: torch.Tensor, visible: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-view InfoNCE: a keypoint's feature in view a must match the same keypoint in view b.

    Args:
        features: ``(B, V, K, D)`` features sampled at each keypoint's pixel in each view.
        visible: ``(B, V, K)`` where the keypoint is actually seen.

    Returns:
        The mean loss over view pairs and keypoints seen in both views (0 when there are none).
    """
    normalised = F.normalize(features, dim=-1)
    views = features.shape[1]
    losses = []
    for a in range(views):
        for b in range(views):
            if a == b:
                continue
            both = visible[:, a] & visible[:, b]  # (B, K)
            if not both.any():
                continue
            logits = normalised[:, a] @ normalised[:, b].transpose(1, 2) / temperature  # (B, K, K)
            logits = logits.masked_fill(~both[:, None, :], float("-inf"))
            rows = logits[both]  # (M, K): one row per keypoint seen in both views
            targets = torch.nonzero(both)[:, 1]
            losses.append(F.cross_entropy(rows, targets))
    return torch.stack(losses).mean() if losses else features.new_zeros(())


class CorticalPolicy(KeyframePolicy):
    """The dual-stream view transformer policy (see module doc)."""

    config_class: ClassVar[type[PolicyConfig]] = CorticalConfig

    def __init__(self, config: CorticalConfig | None = None) -> None:
        config = config or self.config_class()
        super().__init__(config)
        c = config
        self.coarse_renderer = VirtualViewRenderer(c.views, c.coarse.image_size, c.bounds)
        self.fine_renderer = VirtualViewRenderer(c.views, c.fine.image_size, c.bounds)
        last = c.fine if c.dynamic_stream else c.coarse
        if c.static_stream:
            self.coarse = ViewTransformer(c.coarse)
            if c.num_keypoints:
                self.keypoint_embedding = nn.Sequential(
                    nn.Linear(3, c.coarse.dim), nn.GELU(), nn.Linear(c.coarse.dim, c.coarse.dim)
                )
        if c.dynamic_stream:
            self.fine = ViewTransformer(c.fine)
            self.fovea = FoveaEncoder(len(c.fovea_spans), c.fine.dim)
            self.gaze = GazeModel(c.gaze).eval().requires_grad_(False)
        if c.coarse_context:
            self.context_projection = nn.Linear(2 * c.coarse.dim, c.fine.dim)
        features = 2 * last.dim + len(c.views) * last.decoder_channels + last.proprio_dim
        self.head = DiscreteActionHead(features, collision_probe=c.collision_probe)

    def train(self, mode: bool = True) -> CorticalPolicy:
        """Train mode for everything but the frozen gaze model."""
        super().train(mode)
        if self.config.dynamic_stream:
            self.gaze.eval()
        return self

    # --------------------------------------------------------------------------------------- stages
    def _coarse_stage(
        self,
        scene: Scene,
        text: TextFeatures,
        proprio: torch.Tensor,
        generator: torch.Generator | None,
        with_consistency: bool = True,
        attention_dtype: torch.dtype = torch.float32,
    ) -> tuple[VirtualViews, Any, torch.Tensor]:
        """Coarse views and the static-stream transformer; returns (views, output, consistency loss).

        ``with_consistency=False`` skips the loss (0 is returned): a decision does not need it (~1 ms).
        """
        c = self.config
        views = self.coarse_renderer.render(scene.points, scene.colors, scene.mask)
        consistency = scene.points.new_zeros(())
        extra = None
        if c.num_keypoints:
            index = farthest_point_sample(scene.points, c.num_keypoints, scene.mask, generator)
            keypoints = torch.gather(scene.points, 1, index[..., None].expand(-1, -1, 3))
            located = project_to_virtual(keypoints, views, self.coarse_renderer)
            normalised = (keypoints - views.center[:, None]) / views.half_size[:, None, None]

            def extra(view_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                nonlocal consistency
                maps = tokens_to_maps(view_tokens, c.coarse.grid)
                sampled = sample_features(maps, (located.pixels + 0.5) / c.coarse.patch - 0.5)  # (B, V, K, D)
                if c.consistency_weight and with_consistency:
                    consistency = keypoint_consistency(sampled, located.visible, c.consistency_temperature)
                seen = located.visible.float()[..., None]
                pooled = (sampled * seen).sum(1) / seen.sum(1).clamp_min(1.0)
                return pooled + self.keypoint_embedding(normalised), located.visible.any(dim=1)

        output = self.coarse(views.features(), text.tokens, text.mask, proprio, extra, attention_dtype)
        return views, output, consistency

    def _fovea_tokens(self, batch: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """Gaze on the wrist image: fovea tokens and the gaze output (fixation in native wrist pixels)."""
        c = self.config
        wrist = c.cameras.index(WRIST_CAMERA)
        images = batch["rgb"][:, wrist].permute(0, 3, 1, 2).float() / 255.0
        text = self.encode_text(batch["instruction"]).pooled if c.gaze.text_dim else None
        gaze, fixation = self.gaze.fixate(images, text)
        crops = foveated_crops(images, fixation, c.fovea_spans, c.fovea_size)
        return self.fovea(crops), (gaze, fixation)

    def _fine_stage(
        self,
        scene: Scene,
        focus: torch.Tensor,
        fovea: torch.Tensor,
        text: TextFeatures,
        proprio: torch.Tensor,
        coarse_output: Any | None,
        attention_dtype: torch.dtype = torch.float32,
    ) -> tuple[VirtualViews, Any]:
        """Zoomed views around ``focus``; fovea tokens (and with ``coarse_context`` the coarse summary) as extras."""
        center, half = self.fine_renderer.zoomed_cube(focus, self.config.zoom)
        views = self.fine_renderer.render(scene.points, scene.colors, scene.mask, center, half)
        extra = fovea
        if self.config.coarse_context:
            extra = torch.cat([fovea, self.context_projection(coarse_output.global_features)[:, None]], dim=1)
        mask = torch.ones(extra.shape[:2], dtype=torch.bool, device=extra.device)
        output = self.fine(views.features(), text.tokens, text.mask, proprio, lambda _: (extra, mask), attention_dtype)
        return views, output

    def _head_inputs(
        self,
        views: VirtualViews,
        output: Any,
        renderer: VirtualViewRenderer,
        target: torch.Tensor,
        proprio: torch.Tensor,
    ) -> torch.Tensor:
        uv, _ = renderer.world_to_pixel(target[:, None], views.center, views.half_size)  # (B, V, 1, 2)
        local = sample_features(output.decoder_features, uv).flatten(1)  # (B, V * C)
        return torch.cat([output.global_features, local, proprio], dim=1)

    # ------------------------------------------------------------------------------------- training
    def loss(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Heatmap, rotation, gripper, collision and consistency losses of a training batch."""
        c = self.config
        scene = build_scene(batch, c.bounds, c.augmentation if self.training else None, generator)
        target = scene.actions[:, :3]
        text = self.encode_text(batch["instruction"])
        moved_gripper = scene.move(batch["gripper_pose"][:, :3].float()) if c.proprio_position else None
        proprio = proprioception(batch, c, moved_gripper)
        losses: dict[str, torch.Tensor] = {}
        output = None
        if c.static_stream:
            views, output, consistency = self._coarse_stage(scene, text, proprio, generator)
            uv, _ = self.coarse_renderer.world_to_pixel(target[:, None], views.center, views.half_size)
            goal = heatmap_targets(uv[:, :, 0], c.coarse.image_size, c.heatmap_sigma)
            losses["coarse_heatmap"] = heatmap_loss(output.heatmap_logits, goal)
            if c.consistency_weight:
                losses["consistency"] = consistency
            last, renderer = (views, output), self.coarse_renderer
        if c.dynamic_stream:
            noise = ((torch.rand(target.shape, generator=generator) * 2 - 1) * c.focus_noise).to(target.device)
            fovea, _ = self._fovea_tokens(batch)
            views, output = self._fine_stage(scene, target + noise, fovea, text, proprio, output)
            uv, _ = self.fine_renderer.world_to_pixel(target[:, None], views.center, views.half_size)
            sigma = c.heatmap_sigma if c.fine_heatmap_sigma is None else c.fine_heatmap_sigma
            goal = heatmap_targets(uv[:, :, 0], c.fine.image_size, sigma)
            losses["fine_heatmap"] = heatmap_loss(output.heatmap_logits, goal)
            last, renderer = (views, output), self.fine_renderer
        logits = self.head(self._head_inputs(*last, renderer, target, proprio))
        losses.update(discrete_losses(logits, discrete_targets(scene.actions)))
        total = sum(value for key, value in losses.items() if key != "consistency")
        losses["total"] = total + c.consistency_weight * losses.get("consistency", 0.0)
        return losses

    # ------------------------------------------------------------------------------------ inference
    def _stages(
        self, batch: dict[str, Any]
    ) -> tuple[list[HeatmapTerm], VirtualViews, Any, VirtualViewRenderer, torch.Tensor]:
        """A decision's stages: heatmap terms (fine first), the last stage's views, output and renderer, proprio."""
        c = self.config
        scene = build_scene(batch, c.bounds)
        text = self.encode_text(batch["instruction"])
        proprio = proprioception(batch, c)
        precision = ATTENTION_DTYPES[c.attention_precision]
        terms: list[HeatmapTerm] = []
        output = None
        if c.static_stream:
            views, output, _ = self._coarse_stage(
                scene, text, proprio, torch.Generator().manual_seed(0), with_consistency=False,
                attention_dtype=precision,
            )  # fmt: skip
            terms.append(HeatmapTerm(self.coarse_renderer, heatmap_probabilities(output.heatmap_logits),
                                     views.center, views.half_size))  # fmt: skip
            renderer = self.coarse_renderer
        if c.dynamic_stream:
            coarse_position = most_likely_point(terms, views.center, views.half_size) if terms else None
            fovea, (gaze, fixation) = self._fovea_tokens(batch)
            focus = self._focus(batch, coarse_position, gaze, fixation)
            views, output = self._fine_stage(scene, focus, fovea, text, proprio, output, precision)
            weight = self._fine_weight(batch, scene, coarse_position) if c.static_stream else 1.0
            fine = HeatmapTerm(self.fine_renderer, heatmap_probabilities(output.heatmap_logits), views.center,
                               views.half_size, weight)  # fmt: skip
            terms.insert(0, fine)
            renderer = self.fine_renderer
        return terms, views, output, renderer, proprio

    def _fine_weight(self, batch: dict[str, Any], scene: Scene, coarse: torch.Tensor) -> float | torch.Tensor:
        """``fine_weight``, or ``(B, 1, 1, 1)`` weights where the carry weight or the free-space cap applies."""
        c = self.config
        if c.carry_fine_weight is None and c.free_space_fine_weight is None:
            return c.fine_weight
        weight = torch.full((coarse.shape[0],), c.fine_weight, device=coarse.device)
        if c.carry_fine_weight is not None:
            closed = batch["gripper_open"].to(coarse.device).float() < 0.5
            weight = torch.where(closed, c.carry_fine_weight, weight)
        if c.free_space_fine_weight is not None:
            free = scene.clearance(coarse) > c.free_space_clearance
            weight = torch.where(free, weight.clamp_max(c.free_space_fine_weight), weight)
        return weight.view(-1, 1, 1, 1)

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[KeyframeAction]:
        """Coarse stage, focus, fine stage, heads: one keyframe per sample."""
        terms, views, output, renderer, proprio = self._stages(batch)
        position = most_likely_point(terms, views.center, views.half_size)
        logits = self.head(self._head_inputs(views, output, renderer, position, proprio))
        return decode_actions(position, logits)

    @torch.no_grad()
    def stage_points(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Where each stage alone (in its own cube) and both together would put the next position, ``(B, 3)`` each.

        A diagnostic: it tells a coarse stage that missed the target from a fine stage that moved a right
        coarse point away (``benchmarks/policy_stage_points.py``).
        """
        terms, views, _, _, _ = self._stages(batch)
        names = ("fine", "coarse") if self.config.dynamic_stream else ("coarse",)
        points = {name: most_likely_point([term], term.center, term.half_size) for name, term in zip(names, terms)}
        points["decision"] = most_likely_point(terms, views.center, views.half_size)
        return points

    def _focus(
        self, batch: dict[str, Any], coarse: torch.Tensor | None, gaze: Any, fixation: torch.Tensor
    ) -> torch.Tensor:
        """Where the fine stage zooms: the coarse point, or with ``gaze_focus`` that point moved onto the gaze ray.

        The move happens when the gaze model sees the target. Without a static stream, the gaze's 3D
        fixation (or the gripper when the gaze sees nothing).
        """
        if coarse is not None and not self.config.gaze_focus:
            return coarse
        wrist = self.config.cameras.index(WRIST_CAMERA)
        intrinsics, extrinsics = batch["intrinsics"][:, wrist].float(), batch["extrinsics"][:, wrist].float()
        sees_target = gaze.visible_logits[:, 0] > 0
        if coarse is None:
            world, valid = fixation_to_world(fixation, batch["depth"][:, wrist], intrinsics, extrinsics)
            fallback = batch["gripper_pose"][:, :3].float()
            return torch.where((sees_target & valid)[:, None], world, fallback)
        homogeneous = torch.cat([fixation, torch.ones_like(fixation[:, :1])], dim=1)
        ray = torch.einsum("bij,bj->bi", extrinsics[:, :3, :3], torch.linalg.solve(intrinsics, homogeneous))
        ray = F.normalize(ray, dim=-1)
        origin = extrinsics[:, :3, 3]
        along = ((coarse - origin) * ray).sum(-1, keepdim=True).clamp_min(0.0)
        on_ray = origin + along * ray
        return torch.where(sees_target[:, None], on_ray, coarse)


class RVTPolicy(CorticalPolicy):
    """The single-stream baseline: virtual views + language (RVT), same pipeline and heads."""

    config_class: ClassVar[type[PolicyConfig]] = RVTConfig
