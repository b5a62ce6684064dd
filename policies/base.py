"""The keyframe-policy contract and what every policy shares: config, text features, saving and loading.

Contract: ``act(observation, instruction) -> KeyframeAction``; ``loss(batch, generator) -> dict`` with a
``"total"`` entry; ``save(dir)`` / ``load(dir)`` as ``config.json`` (with a ``type`` tag) +
``model.safetensors``. Policies are registered by type name in :data:`POLICIES`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from cortico.atomic import atomic_path, write_json_atomic
from cortico.envs.cameras import DEFAULT_CAMERAS
from cortico.envs.contract import KeyframeAction, Observation
from cortico.perception.pipeline import observation_to_batch
from cortico.perception.text_encoder import TextEncoder, TextFeatures, validate_instruction
from cortico.perception.workspace import WorkspaceBounds
from cortico.registry import Registry

POLICIES: Registry[type] = Registry("policy type")
POLICIES.register("cortical", "cortico.policies.cortical:CorticalPolicy")
POLICIES.register("rvt", "cortico.policies.cortical:RVTPolicy")
POLICIES.register("cnn", "cortico.policies.cnn_bc:CNNPolicy")

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class PolicyLoadError(ValueError):
    """A saved policy is missing, corrupt, or of another type or configuration."""


# Settings added after checkpoints were saved without them, with the value those checkpoints were trained under
# where it differs from today's default.
EARLIER_VALUES: dict[str, Any] = {"collision_probe": False, "free_space_fine_weight": None}


def earlier_values(saved: dict[str, Any], config_class: type[PolicyConfig]) -> dict[str, Any]:
    """The :data:`EARLIER_VALUES` of the settings of ``config_class`` that a saved configuration lacks."""
    known = {f.name for f in dataclasses.fields(config_class)}
    return {key: value for key, value in EARLIER_VALUES.items() if key in known and key not in saved}


@dataclass(frozen=True)
class PolicyConfig:
    """Settings every policy has (subclasses add theirs; the whole config is saved with the weights).

    Attributes:
        cameras: the real cameras the policy reads, in order.
        workspace_low, workspace_high: the workspace box.
        image_size: camera image size the policy was trained with (evaluation renders at this size).
        text_model: the frozen text encoder.
        tasks: tasks seen in training (an instruction of another task is flagged by evaluation).
        proprio_position: also give the policy the gripper's position (scaled to [-1, 1] in the workspace),
            the cheapest cue of which stage of a task the arm is in. Off by default and in every checkpoint
            saved before the setting existed.
        collision_probe: train the ignore-collision classifier as a linear probe on the action head's features,
            its loss kept out of the features the rotation and gripper heads (and the backbone) share. Its labels
            (did the move go through contact) are hard to see in one observation; trained through the features,
            the head memorised them, and the probe gained MT10 success on the same demos (cortical +3.6 pooled
            over three trainings, RVT +5.3; BENCHMARKS.md). Training only: inference is the same either way. On
            by default since 2026-12-05; checkpoints saved before read as off (:data:`EARLIER_VALUES`).
    """

    type: ClassVar[str] = ""
    inference_settings: ClassVar[tuple[str, ...]] = ()  # settings a trained policy may change (no retraining)
    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    workspace_low: tuple[float, float, float] = WorkspaceBounds().low
    workspace_high: tuple[float, float, float] = WorkspaceBounds().high
    image_size: int = 128
    text_model: str = "minilm"
    tasks: tuple[str, ...] = ()
    proprio_position: bool = False
    collision_probe: bool = True

    @property
    def proprio_dim(self) -> int:
        """Width of :func:`proprioception`'s output for this configuration."""
        return 5 if self.proprio_position else 2

    def without_augmentation(self) -> PolicyConfig:
        """The same configuration with training augmentation off (for short trainings; see docs/policies.md)."""
        return self

    def inference_values(self) -> dict[str, Any]:
        """The current value of every inference setting (what an evaluation records and Ray workers apply)."""
        return {key: getattr(self, key) for key in self.inference_settings}

    def with_inference_settings(self, settings: dict[str, Any]) -> PolicyConfig:
        """The same configuration with some of :attr:`inference_settings` changed (validated as at construction)."""
        refused = sorted(set(settings) - set(self.inference_settings))
        if refused:
            accepted = ", ".join(self.inference_settings) or "none"
            raise ValueError(
                f"{refused} cannot change on a trained {self.type!r} policy; inference settings accepted: {accepted}"
            )
        fields = {f.name: f for f in dataclasses.fields(self)}
        values = {
            key: _same_kind(key, value, getattr(self, key), optional="None" in str(fields[key].type))
            for key, value in settings.items()
        }
        return dataclasses.replace(self, **values)

    def workspace_tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """The workspace's low and high corners as tensors on ``device``."""
        return (torch.tensor(self.workspace_low, device=device), torch.tensor(self.workspace_high, device=device))

    @property
    def bounds(self) -> WorkspaceBounds:
        """The workspace as a :class:`WorkspaceBounds`."""
        return WorkspaceBounds(self.workspace_low, self.workspace_high)

    def to_dict(self) -> dict[str, Any]:
        """JSON form with the ``type`` tag."""
        return {"type": self.type, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], saved: bool = False) -> PolicyConfig:
        """Inverse of :meth:`to_dict` (nested dataclasses and tuples restored); unknown keys are refused.

        ``saved``: ``raw`` was written with a checkpoint, so a setting added since takes the value the checkpoint
        was trained with (:data:`EARLIER_VALUES`), not today's default.
        """
        raw = {k: v for k, v in raw.items() if k != "type"}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if saved:
            raw = {**earlier_values(raw, cls), **raw}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise PolicyLoadError(f"{cls.__name__} has no settings {unknown}; known: {sorted(fields)}")
        values = {}
        for key, value in raw.items():
            default = _field_default(fields[key])
            if dataclasses.is_dataclass(default) and isinstance(value, dict):
                value = type(default)(**{k: _tuple_deep(v) for k, v in value.items()})
            values[key] = _tuple_deep(value)
        return cls(**values)


def _same_kind(key: str, value: Any, current: Any, optional: bool = False) -> Any:
    """``value`` as the type of the setting's current value (an int is accepted for a float), or a clear error.

    An ``optional`` setting (annotated ``float | None``) is an optional number: None (off) or a float.
    """
    if optional:
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        if not ok:
            raise ValueError(f"setting {key!r} must be a number or None (off), got {value!r}")
        return None if value is None else float(value)
    if isinstance(current, bool) or isinstance(value, bool):
        ok = isinstance(current, bool) and isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise ValueError(f"setting {key!r} must be of type {type(current).__name__}, got {value!r}")
    return value


def _field_default(field_: dataclasses.Field) -> Any:
    if field_.default is not dataclasses.MISSING:
        return field_.default
    if field_.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field_.default_factory()  # type: ignore[misc]
    return None


def _tuple_deep(value: Any) -> Any:
    return tuple(_tuple_deep(v) for v in value) if isinstance(value, list) else value


class KeyframePolicy(nn.Module):
    """Base class of every policy: text features, the ``act`` wrapper and persistence.

    Subclasses implement ``loss`` and ``predict`` on ``KeyframeDataset``-style batches.
    """

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        self._text_encoder: TextEncoder | None = None

    @property
    def text_encoder(self) -> TextEncoder:
        """The frozen text encoder (loaded on first use; its weights are not part of the policy's)."""
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(self.config.text_model)
        return self._text_encoder

    @property
    def device(self) -> torch.device:
        """Where the policy's parameters live."""
        return next(self.parameters()).device

    def encode_text(self, instructions: list[str]) -> TextFeatures:
        """Text features of a batch of instructions, on the policy's device."""
        features = self.text_encoder.encode(list(instructions))
        device = self.device
        return TextFeatures(features.tokens.to(device), features.mask.to(device), features.pooled.to(device))

    # ------------------------------------------------------------------------------------------ contract
    def loss(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Training losses of a batch (``"total"`` is optimised)."""
        raise NotImplementedError

    def predict(self, batch: dict[str, Any]) -> list[KeyframeAction]:
        """Next keyframe for each sample of a batch."""
        raise NotImplementedError

    @torch.no_grad()
    def act(self, observation: Observation, instruction: str | None = None) -> KeyframeAction:
        """The next keyframe for one observation (NaN or malformed observations are refused first)."""
        observation.validate()
        missing = [c for c in self.config.cameras if c not in observation.cameras]
        if missing:
            raise ValueError(
                f"the policy reads cameras {list(self.config.cameras)}; the observation lacks {missing} "
                f"(it has {list(observation.cameras)})"
            )
        batch = observation_to_batch(observation, tuple(self.config.cameras))
        batch["instruction"] = [
            validate_instruction(instruction if instruction is not None else observation.instruction)
        ]
        batch["gripper_open"] = torch.tensor([float(observation.gripper_open)])
        batch["time"] = torch.tensor([float(observation.time)])
        batch = to_device(batch, self.device)
        if not self.training:  # switching modes walks every submodule: a few ms per decision
            return self.predict(batch)[0]
        self.eval()
        try:
            return self.predict(batch)[0]
        finally:
            self.train()

    # --------------------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(tmp))
        write_json_atomic(directory / CONFIG_FILE, self.config.to_dict())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> KeyframePolicy:
        """Load a saved policy of this class (or of any registered type when called on the base class)."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise PolicyLoadError(f"{directory} is not a saved policy (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        try:
            raw = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise PolicyLoadError(f"{config_path} is not valid JSON ({error})") from error
        saved_type = raw.get("type")
        if saved_type not in POLICIES:
            raise PolicyLoadError(f"{config_path} has policy type {saved_type!r}; known types: {POLICIES.available()}")
        policy_class = POLICIES.get(saved_type)
        if cls is not KeyframePolicy and policy_class is not cls:
            raise PolicyLoadError(f"{directory} holds a {saved_type!r} policy, not a {cls.config_class.type!r} one")
        policy = policy_class(policy_class.config_class.from_dict(raw, saved=True))
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as error:
            raise PolicyLoadError(f"{weights_path} is corrupt or truncated ({error})") from error
        try:
            missing, unexpected = policy.load_state_dict(state, strict=False)
        except RuntimeError as error:  # tensor shapes differ from the configuration's
            raise PolicyLoadError(
                f"{weights_path} does not fit the {saved_type!r} configuration in {config_path}: {str(error)[:300]}"
            ) from error
        if missing or unexpected:
            raise PolicyLoadError(
                f"{weights_path} does not fit the {saved_type!r} configuration in {config_path} "
                f"(missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]})"
            )
        return policy.eval()


def to_device(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The batch with every tensor moved to ``device`` (strings and lists untouched)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def proprioception(
    batch: dict[str, Any], config: PolicyConfig, gripper_position: torch.Tensor | None = None
) -> torch.Tensor:
    """The policies' low-dimensional input, ``(B, config.proprio_dim)``.

    Gripper open state and time (tens of seconds); with ``config.proprio_position`` also the gripper's
    position scaled to [-1, 1] in the workspace: ``gripper_position`` ``(B, 3)`` when the scene was moved by
    augmentation, else the batch's ``gripper_pose``.
    """
    state = [batch["gripper_open"].float()[:, None], batch["time"].float()[:, None] / 10.0]
    if config.proprio_position:
        position = batch["gripper_pose"][:, :3].float() if gripper_position is None else gripper_position
        low, high = config.workspace_tensors(position.device)
        state.append(2 * (position - low) / (high - low) - 1)
    return torch.cat(state, dim=1)
