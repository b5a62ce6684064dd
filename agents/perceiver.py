"""What the agent perceives at every frame: a memory frame from one camera, and where its gaze rests.

The policy reads whole observations itself; the agent's own perception is what memory and the report
need: a compact embedding and patch tokens of the memory camera (``PixelFrameEncoder`` by default, or a
trained probe encoder), and optionally the egocentric gaze model's fixation on the wrist image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cortico.envs.contract import Observation
from cortico.memory.frame_encoder import PixelFrameEncoder, perceive
from cortico.memory.records import FrameRecord
from cortico.perception.gaze import GazeModel

WRIST_CAMERA = "wrist"


@dataclass
class Perceiver:
    """Observations -> memory frames, and the gaze fixation on the wrist camera.

    Attributes:
        camera: the camera whose images go to memory (it must be in every observation).
        encoder: turns ``(N, H, W, 3)`` uint8 frames into ``(embeddings, tokens)``.
        gaze: a trained gaze model (frozen); without it :meth:`fixation` returns None.
        text_encoder: the encoder of the gaze model's instruction embeddings (loaded when needed).
    """

    camera: str = "front"
    encoder: Any = field(default_factory=PixelFrameEncoder)
    gaze: GazeModel | None = None
    text_encoder: Any = None
    _text_cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def cameras(self) -> tuple[str, ...]:
        """Cameras a per-step observation must render for this perceiver."""
        return (self.camera, WRIST_CAMERA) if self.gaze is not None else (self.camera,)

    def frame(self, observation: Observation, index: int, time: float, facts: dict[str, Any]) -> FrameRecord:
        """The memory frame of an observation at session ``time``."""
        if self.camera not in observation.cameras:
            raise ValueError(
                f"memory reads the {self.camera!r} camera; the observation has {list(observation.cameras)}"
            )
        image = observation.cameras[self.camera].rgb
        embeddings, tokens, seen = perceive(self.encoder, np.ascontiguousarray(image)[None])
        return FrameRecord(index, float(time), embeddings[0], tokens[0], {**facts, **seen[0]})

    def fixation(self, observation: Observation, instruction: str) -> tuple[float, float] | None:
        """The gaze fixation ``(column, row)`` in wrist-image pixels, or None without a gaze model or wrist view."""
        if self.gaze is None or WRIST_CAMERA not in observation.cameras:
            return None
        rgb = observation.cameras[WRIST_CAMERA].rgb
        images = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        text = self._instruction_embedding(instruction) if self.gaze.config.text_dim else None
        static = None
        if self.gaze.config.use_static_view:
            front = torch.from_numpy(np.ascontiguousarray(observation.cameras[self.camera].rgb))
            static = front.permute(2, 0, 1)[None].float() / 255.0
        _, fixation = self.gaze.fixate(images, text, static)
        column, row = fixation[0].tolist()
        return float(column), float(row)

    def _instruction_embedding(self, instruction: str) -> torch.Tensor:
        if instruction not in self._text_cache:
            if self.text_encoder is None:
                from cortico.perception.text_encoder import TextEncoder

                self.text_encoder = TextEncoder(self.gaze.config.text_model)
            self._text_cache[instruction] = self.text_encoder.embed([instruction])
        return self._text_cache[instruction]
