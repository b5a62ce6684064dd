"""TRC2: thalamically routed cortical columns with a hippocampal memory, as a ``transformers`` causal LM.

A column is a decoder layer (RMSNorm, grouped-query attention with RoPE, SwiGLU or routed experts with a
shared expert) plus an "L5" projection that feeds the thalamus. Between columns the thalamic pathway
compresses the L5 output to a low-rank code, mixes a focal path (this token) with a diffuse path (the mean
of *past* tokens only) under a surprise gate, normalises divisively across groups (competition), and
multiplies the next column's attention queries by ``1 + tanh(W_z z)``. The hippocampal pathway reads a
key-value memory with exact top-k retrieval, the query built from the previous chunk only, and feeds a
gated readout into the thalamic input of later columns. Writes come from a fast/slow temporal-difference
critic's surprise; they are stashed during the forward pass and flushed only after the backward pass, so a
read never sees its own future. With ``thalamus=False, hippocampus=False`` the model is a plain decoder
(the ablation and the dense-Transformer baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from cortico.language.configuration import TRC2Config

# Bumped whenever a change to the model or its training makes earlier results stale (2: the critic's
# terminal step; 3: event logs in session seconds from 0). Part of the continual benchmark's run key and of a
# trained module's recipe.
TRAINING_REVISION = 3


@dataclass
class TRC2Output(CausalLMOutputWithPast):
    """``CausalLMOutputWithPast`` plus ``lm_loss``: the next-token loss alone (``loss`` adds the critic's)."""

    lm_loss: torch.Tensor | None = None


class RMSNorm(nn.Module):
    """Root-mean-square layer norm."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last dimension."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary position embedding of ``(B, H, T, d)`` queries or keys (positions 0..T-1)."""
    half = x.shape[-1] // 2
    frequencies = theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)[:, None] * frequencies
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class GroupedQueryAttention(nn.Module):
    """Causal grouped-query attention with RoPE; the queries can be modulated by a gain from the thalamus."""

    def __init__(self, config: TRC2Config) -> None:
        super().__init__()
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.hidden_size // self.heads
        self.theta = config.rope_theta
        self.q = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=False)
        self.k = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, gain: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, D)``, boolean ``mask (B, 1, T, T)`` (True = may attend), ``gain (B, T, H*d)``."""
        batch, length, _ = x.shape
        q = self.q(x)
        if gain is not None:
            q = q * (1 + gain)
        q = q.view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rotate(q, self.theta), rotate(k, self.theta)
        repeat = self.heads // self.kv_heads
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o(out.transpose(1, 2).reshape(batch, length, -1))


class SwiGLU(nn.Module):
    """SwiGLU feed-forward."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., D)``."""
        return self.down(F.silu(self.gate(x)) * self.up(x))


class RoutedExperts(nn.Module):
    """Top-k routed SwiGLU experts plus an always-on shared expert."""

    def __init__(self, config: TRC2Config) -> None:
        super().__init__()
        self.top_k = config.experts_top_k
        self.router = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        self.experts = nn.ModuleList(
            SwiGLU(config.hidden_size, config.intermediate_size) for _ in range(config.num_experts)
        )
        self.shared = SwiGLU(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each token goes to its top-k experts (weights renormalised) and the shared one."""
        probabilities = self.router(x).softmax(-1)
        weights, chosen = probabilities.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        out = self.shared(x)
        for e, expert in enumerate(self.experts):
            weight = (weights * (chosen == e)).sum(-1, keepdim=True)
            if weight.any():
                out = out + weight * expert(x)
        return out


class CorticalColumn(nn.Module):
    """One column: attention and feed-forward with residuals, and the L5 output to the thalamus."""

    def __init__(self, config: TRC2Config) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.attention = GroupedQueryAttention(config)
        self.ffn_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.ffn = RoutedExperts(config) if config.num_experts else SwiGLU(config.hidden_size, config.intermediate_size)
        self.l5 = nn.Linear(config.hidden_size, config.hidden_size, bias=False) if config.thalamus else None

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, gain: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the new residual stream and the L5 projection (None without a thalamus)."""
        h = h + self.attention(self.attention_norm(h), mask, gain)
        h = h + self.ffn(self.ffn_norm(h))
        return h, (self.l5(h) if self.l5 is not None else None)


class Thalamus(nn.Module):
    """The pathway from one column to the next: focal + past-only diffuse, surprise gate, competition, gain."""

    def __init__(self, config: TRC2Config) -> None:
        super().__init__()
        self.groups = config.thalamus_groups
        self.down = nn.Linear(config.hidden_size, config.thalamus_rank, bias=False)
        self.surprise = nn.Linear(config.thalamus_rank, 1)
        self.gain = nn.Linear(
            config.thalamus_rank, config.num_attention_heads * (config.hidden_size // config.num_attention_heads)
        )
        nn.init.zeros_(self.gain.weight)  # starts as an identity routing (gain 0)
        nn.init.zeros_(self.gain.bias)

    def forward(self, l5: torch.Tensor, feedback: torch.Tensor | None = None) -> torch.Tensor:
        """Query gains ``(B, T, H*d)`` for the next column from its predecessor's L5 output ``(B, T, D)``."""
        focal = self.down(l5 if feedback is None else l5 + feedback)
        batch, length, rank = focal.shape
        # diffuse path: running mean over strictly earlier positions (0 at the first token)
        cumulative = focal.cumsum(dim=1) - focal
        counts = torch.arange(length, device=focal.device, dtype=focal.dtype).clamp_min(1)[None, :, None]
        diffuse = cumulative / counts
        gate = torch.sigmoid(self.surprise(focal - diffuse))  # novel tokens lean on the focal path
        code = gate * focal + (1 - gate) * diffuse
        grouped = code.view(batch, length, self.groups, rank // self.groups)
        energy = grouped.pow(2).sum(-1, keepdim=True)
        grouped = grouped / torch.sqrt(1e-6 + energy.mean(dim=2, keepdim=True))  # divisive normalisation
        return torch.tanh(self.gain(grouped.view(batch, length, rank)))


class HippocampalMemory(nn.Module):
    """Key-value slots with exact top-k reads from the previous chunk; surprise-ranked, deferred writes."""

    def __init__(self, config: TRC2Config) -> None:
        super().__init__()
        d = config.hidden_size
        self.chunk, self.top_k, self.writes = config.chunk_size, config.memory_top_k, config.writes_per_step
        self.query = nn.Linear(d, d, bias=False)
        self.read_out = nn.Linear(d, d, bias=False)
        self.gate = nn.Linear(2 * d, 1)
        self.register_buffer("keys", torch.zeros(config.memory_slots, d), persistent=True)
        self.register_buffer("values", torch.zeros(config.memory_slots, d), persistent=True)
        self.register_buffer("usage", torch.zeros(config.memory_slots), persistent=True)
        self.register_buffer("filled", torch.zeros(config.memory_slots, dtype=torch.bool), persistent=True)
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def read(self, h: torch.Tensor) -> torch.Tensor:
        """Feedback ``(B, T, D)``: each chunk reads with a query from the previous chunk (chunk 0 reads nothing)."""
        batch, length, dim = h.shape
        chunks = math.ceil(length / self.chunk)
        if chunks < 2 or not bool(self.filled.any()):
            return torch.zeros_like(h)
        padded = F.pad(h, (0, 0, 0, chunks * self.chunk - length)).view(batch, chunks, self.chunk, dim)
        summaries = padded.mean(dim=2)  # (B, C, D)
        queries = F.normalize(self.query(summaries[:, :-1]), dim=-1)  # chunk c's query from chunk c - 1
        keys = F.normalize(self.keys, dim=-1)
        scores = queries @ keys.T  # (B, C-1, S)
        scores = scores.masked_fill(~self.filled, float("-inf"))
        k = min(self.top_k, int(self.filled.sum()))
        top, index = scores.topk(k, dim=-1)  # exact top-k
        weights = top.softmax(-1)
        readout = (weights[..., None] * self.values[index]).sum(-2)  # (B, C-1, D)
        if self.training:
            self.usage.index_add_(0, index.flatten(), weights.detach().flatten())
        readout = torch.cat([torch.zeros_like(readout[:, :1]), readout], dim=1)  # chunk 0: nothing
        per_token = (
            readout[:, :, None].expand(-1, -1, self.chunk, -1).reshape(batch, chunks * self.chunk, dim)[:, :length]
        )
        gate = torch.sigmoid(self.gate(torch.cat([h, per_token], dim=-1)))
        return gate * self.read_out(per_token)

    def stash(self, h: torch.Tensor, surprise: torch.Tensor, valid: torch.Tensor) -> None:
        """Remember the most surprising tokens' states for writing after the backward pass."""
        scores = surprise.masked_fill(~valid, float("-inf")).flatten()
        count = min(self.writes, int(valid.sum()))
        if count <= 0:
            return
        chosen = scores.topk(count).indices
        states = h.detach().reshape(-1, h.shape[-1])[chosen]
        self.pending.append((states, states.clone()))

    @torch.no_grad()
    def flush(self) -> int:
        """Write the stashed states into the least-used slots; returns how many were written."""
        written = 0
        for keys, values in self.pending:
            for key, value in zip(keys, values):
                empty = torch.nonzero(~self.filled).flatten()
                slot = int(empty[0]) if len(empty) else int(self.usage.argmin())
                self.keys[slot], self.values[slot] = key, value
                self.usage[slot] = self.usage[self.filled].mean() if self.filled.any() else 0.0
                self.filled[slot] = True
                written += 1
        self.pending = []
        return written


class TRC2PreTrainedModel(PreTrainedModel):
    """Weight initialisation and config class."""

    config_class = TRC2Config
    base_model_prefix = "model"
    _no_split_modules = ["CorticalColumn"]

    def _init_weights(self, module: nn.Module) -> None:
        """Small normal weights; the thalamic gains start at zero (plain attention until learned)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, Thalamus):  # children come first, so this overrides their init
            nn.init.zeros_(module.gain.weight)
            nn.init.zeros_(module.gain.bias)


class TRC2ForCausalLM(TRC2PreTrainedModel, GenerationMixin):
    """The TRC2 causal language model (see the module doc).

    ``forward(..., plain=True)`` is the replay path: no hippocampal feedback and no memory writes.
    """

    _tied_weights_keys = {"lm_head.weight": "embed.weight"}

    def __init__(self, config: TRC2Config) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.columns = nn.ModuleList(CorticalColumn(config) for _ in range(config.num_hidden_layers))
        self.thalami = (
            nn.ModuleList(Thalamus(config) for _ in range(config.num_hidden_layers - 1)) if config.thalamus else None
        )
        self.hippocampus = HippocampalMemory(config) if config.hippocampus else None
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.value_fast = nn.Linear(config.hidden_size, 1)
        self.value_slow = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (tied with the output head)."""
        return self.embed

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the token embedding (``resize_token_embeddings`` when new words are learned)."""
        self.embed = value

    def get_output_embeddings(self) -> nn.Linear:
        """The output head."""
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        """Replace the output head."""
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        plain: bool = False,
        **kwargs,
    ) -> TRC2Output:
        """Logits ``(B, T, V)``; with ``labels`` (``-100`` = ignored) the next-token loss plus the critic's."""
        batch, length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        valid = attention_mask.bool()
        causal = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
        mask = causal[None, None] & valid[:, None, None, :]
        mask = mask | torch.eye(length, dtype=torch.bool, device=input_ids.device)[None, None]  # no empty rows
        h = self.embed(input_ids)
        gain = None
        feedback = None
        injected = None
        for layer, column in enumerate(self.columns):
            h, l5 = column(h, mask, gain)
            if self.hippocampus is not None and layer == self.config.injection_layer:
                injected = h
                if not plain:
                    feedback = self.hippocampus.read(h)
                    if self.thalami is None:  # no thalamic input to carry it: feed back into the residual stream
                        h = h + feedback
            if self.thalami is not None and layer < len(self.thalami):
                gain = self.thalami[layer](l5, feedback if layer >= self.config.injection_layer else None)
        hidden = self.norm(h)
        logits = self.lm_head(hidden)
        loss = lm_loss = None
        if labels is not None:
            token_loss = F.cross_entropy(
                logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none", ignore_index=-100
            )
            counted = labels[:, 1:] != -100
            lm_loss = token_loss.sum() / counted.sum().clamp_min(1)
            critic_loss, surprise = self._critic(hidden, token_loss.detach(), counted)
            loss = lm_loss + 0.1 * critic_loss
            if self.training and self.hippocampus is not None and not plain and injected is not None:
                self.hippocampus.stash(injected[:, :-1], surprise, counted)
        return TRC2Output(loss=loss, logits=logits, lm_loss=lm_loss)

    def _critic(
        self, hidden: torch.Tensor, token_loss: torch.Tensor, counted: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fast and slow TD value predictors of the log-likelihood; surprise = delta_fast - delta_slow."""
        reward = -token_loss  # (B, T-1): log-likelihood of the token that followed
        following = torch.cat([counted[:, 1:], torch.zeros_like(counted[:, :1])], dim=1)  # next token scored?
        losses, deltas = [], []
        for head, discount in (
            (self.value_fast, self.config.fast_discount),
            (self.value_slow, self.config.slow_discount),
        ):
            value = head(hidden.detach()).squeeze(-1)  # (B, T)
            target = reward + discount * value[:, 1:].detach() * following  # the end of the answer is terminal
            delta = target - value[:, :-1]
            losses.append((delta.pow(2) * counted).sum() / counted.sum().clamp_min(1))
            deltas.append(delta.detach())
        return losses[0] + losses[1], (deltas[0] - deltas[1]).abs()

    def flush_memory_writes(self) -> int:
        """Call after ``loss.backward()``: commit the stashed hippocampal writes."""
        return self.hippocampus.flush() if self.hippocampus is not None else 0

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, attention_mask=None, **kwargs):  # noqa: ANN001, ANN201
        """No key-value cache: every generation step reads the whole sequence (small models, short texts)."""
        return {"input_ids": input_ids, "attention_mask": attention_mask}
