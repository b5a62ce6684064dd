"""Configuration of the thalamically routed cortical-column language model (TRC2)."""

from __future__ import annotations

from transformers import PretrainedConfig


class TRC2Config(PretrainedConfig):
    """TRC2 settings (a ``transformers`` config: saved as ``config.json`` beside the safetensors weights).

    Args:
        vocab_size: tokenizer size.
        hidden_size: width of the residual stream.
        num_hidden_layers: cortical columns.
        num_attention_heads, num_key_value_heads: grouped-query attention.
        intermediate_size: SwiGLU width (per expert).
        num_experts: routed experts per column (0: one dense SwiGLU); experts_top_k: experts per token.
        thalamus: route between columns through the thalamic pathway (False: ablation, a plain decoder).
        thalamus_rank: width of the thalamic code; thalamus_groups: groups of the divisive normalisation.
        hippocampus: the key-value memory pathway (False: ablation).
        memory_slots, memory_top_k: slots of the hippocampal memory and slots read per chunk.
        injection_layer: the column whose output the hippocampus reads and writes (later columns get its feedback).
        chunk_size: tokens per chunk; the memory query of a chunk is built from the previous chunk only.
        fast_discount, slow_discount: the TD critic's fast and slow value predictors.
        writes_per_step: slots written after each backward pass (the most surprising tokens).
    """

    model_type = "trc2"

    def __init__(
        self,
        vocab_size: int = 512,
        hidden_size: int = 128,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        num_key_value_heads: int = 2,
        intermediate_size: int = 256,
        num_experts: int = 0,
        experts_top_k: int = 2,
        max_position_embeddings: int = 256,
        rope_theta: float = 10000.0,
        rms_norm_eps: float = 1e-6,
        thalamus: bool = True,
        thalamus_rank: int = 32,
        thalamus_groups: int = 4,
        hippocampus: bool = True,
        memory_slots: int = 256,
        memory_top_k: int = 4,
        injection_layer: int = 1,
        chunk_size: int = 16,
        fast_discount: float = 0.5,
        slow_discount: float = 0.95,
        writes_per_step: int = 8,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        tie_word_embeddings: bool = True,
        **kwargs,
    ) -> None:
        if hidden_size % num_attention_heads or num_attention_heads % num_key_value_heads:
            raise ValueError("hidden_size must divide into heads, and heads into key-value groups")
        if thalamus and thalamus_rank % thalamus_groups:
            raise ValueError("thalamus_rank must be a multiple of thalamus_groups")
        if hippocampus and not 0 <= injection_layer < num_hidden_layers - 1:
            raise ValueError("injection_layer must leave at least one later column to feed back into")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.intermediate_size = intermediate_size
        self.num_experts = num_experts
        self.experts_top_k = experts_top_k
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.thalamus = thalamus
        self.thalamus_rank = thalamus_rank
        self.thalamus_groups = thalamus_groups
        self.hippocampus = hippocampus
        self.memory_slots = memory_slots
        self.memory_top_k = memory_top_k
        self.injection_layer = injection_layer
        self.chunk_size = chunk_size
        self.fast_discount = fast_discount
        self.slow_discount = slow_discount
        self.writes_per_step = writes_per_step
        super().__init__(
            pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings, **kwargs,
        )  # fmt: skip
