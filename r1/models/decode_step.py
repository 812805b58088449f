"""One decode step of a Llama-family causal LM (Llama, SmolLM2, Mistral, Qwen2) written out
as plain tensor operations, with each layer's weights prepared once per generation.

Why not the model's own forward: at decode shapes (32 rows, one token each) the matrix
products are most of the time, and the forward runs them as they are stored: q, k and v (and
gate and up) as separate products, over weights in the layout training keeps, cast by
autocast. Here q/k/v and gate/up are concatenated into one weight each, cast once to the
compute dtype, and on a CPU in bf16 reordered once into oneDNN's blocked layout (the layout
PyTorch's own inductor uses for frozen weights): the 30 layers of SmolLM2 took 43 ms per step
instead of 66 on one core (scripts/bench_rollout.py measures it). The KV cache is kept in the
compute dtype, so attention does not cast the whole cache every step.

Numerics follow the model's forward under autocast (or in its own dtype without it): the
residual stream in the weights' dtype, RMSNorm in fp32, the products in the compute dtype,
rotary embeddings in the wider of the two, softmax in fp32. tests/rollout/test_hf_engine.py
checks the logits against the model's forward and the greedy completions against HF
`generate`. `DecodeStep.build` returns None for anything else (another architecture, LoRA
or other wrapped modules, sliding-window attention), and the engine then calls the forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from r1.models.decode import GrowingCache, grouped_attention

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")


class FusedLinear:
    """y = x @ cat(weights).T + cat(biases), its weight prepared for repeated products."""

    def __init__(self, linears: Sequence[nn.Linear], dtype: torch.dtype, rows: int):
        weight = torch.cat([m.weight.detach() for m in linears]).to(dtype)
        biases = [m.bias for m in linears]
        self.bias = None if biases[0] is None else torch.cat(biases).detach().to(dtype)
        self.packed = _can_pack(weight)
        self.weight = (
            torch.ops.mkldnn._reorder_linear_weight(weight, rows) if self.packed else weight
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def _can_pack(weight: torch.Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.bfloat16
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    )


@dataclass
class _Layer:
    input_norm: torch.Tensor
    qkv: FusedLinear
    o: FusedLinear
    post_norm: torch.Tensor
    gate_up: FusedLinear
    down: FusedLinear


class DecodeStep:
    """logits of the next token for N rows, each feeding one token, given their KV cache."""

    def __init__(self, model: nn.Module, compute_dtype: torch.dtype, rows: int):
        inner = model.model
        attention = inner.layers[0].self_attn
        config = model.config
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim, self.scaling = attention.head_dim, attention.scaling
        self.eps = inner.norm.variance_epsilon
        self.compute_dtype = compute_dtype
        self.embed = inner.embed_tokens.weight.detach()
        self.rotary = inner.rotary_emb
        self.final_norm = inner.norm.weight.detach()

        def fused(*linears):
            return FusedLinear(linears, compute_dtype, rows)

        self.layers = [
            _Layer(
                input_norm=layer.input_layernorm.weight.detach(),
                qkv=fused(layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj),
                o=fused(layer.self_attn.o_proj),
                post_norm=layer.post_attention_layernorm.weight.detach(),
                gate_up=fused(layer.mlp.gate_proj, layer.mlp.up_proj),
                down=fused(layer.mlp.down_proj),
            )
            for layer in inner.layers
        ]
        self.head = fused(model.lm_head)

    @classmethod
    def build(cls, model: nn.Module, rows: int) -> DecodeStep | None:
        """The step for `model` in the current autocast state, or None if it is not a plain
        Llama-family model (the caller then runs the model's forward)."""
        if not supported(model):
            return None
        device = model.lm_head.weight.device
        dtype = (
            torch.get_autocast_dtype(device.type)
            if torch.is_autocast_enabled(device.type)
            else model.lm_head.weight.dtype
        )
        return cls(model, dtype, rows)

    def __call__(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        cache: GrowingCache,
        attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """tokens [N], positions [N, 1], attention_mask [N, 1, 1, W] (bool, W the cache's
        width after this token) -> logits [N, V] in the compute dtype. Writes the cache."""
        rows, dtype = tokens.shape[0], self.compute_dtype
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        hidden = F.embedding(tokens, self.embed)  # [N, hidden]: the residual stream
        cos, sin = self.rotary(hidden[:, None], positions)  # [N, 1, D], the residual's dtype
        cos, sin = cos[:, None], sin[:, None]  # [N, 1, 1, D]: broadcasts over heads
        for layer, cached in zip(self.layers, cache.layers):
            qkv = layer.qkv(self._norm(hidden, layer.input_norm).to(dtype))
            q, k, v = qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], -1)
            q = _rotate(q.view(rows, heads, 1, dim), cos, sin).to(dtype)
            k = _rotate(k.view(rows, kv_heads, 1, dim), cos, sin).to(dtype)
            keys, values = cached.update(k, v.view(rows, kv_heads, 1, dim))
            attended, _ = grouped_attention(
                None, q, keys, values, attention_mask, scaling=self.scaling
            )
            hidden = hidden + layer.o(attended.reshape(rows, heads * dim))
            gate, up = layer.gate_up(self._norm(hidden, layer.post_norm).to(dtype)).chunk(2, -1)
            hidden = hidden + layer.down(F.silu(gate) * up)
        return self.head(self._norm(hidden, self.final_norm).to(dtype))

    def _norm(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # transformers' LlamaRMSNorm: fp32 statistics, the result back in the input's dtype.
        states = hidden.float()
        states = states * torch.rsqrt(states.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * states.to(hidden.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def supported(model: nn.Module) -> bool:
    """A plain (unwrapped) Llama-family causal LM: its attention, MLP and head are the
    architecture's own modules with nn.Linear products, full attention in every layer."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return False
    if getattr(config, "hidden_act", None) != "silu":
        return False
    if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
        return False
    if getattr(config, "use_sliding_window", False) or (
        config.model_type == "mistral" and getattr(config, "sliding_window", None)
    ):
        return False
    inner = getattr(model, "model", None)
    if inner is None or not all(
        hasattr(inner, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")
    ):
        return False
    if type(getattr(model, "lm_head", None)) is not nn.Linear:
        return False
    linears = [
        module
        for layer in inner.layers
        for module in (
            layer.self_attn.q_proj,
            layer.self_attn.k_proj,
            layer.self_attn.v_proj,
            layer.self_attn.o_proj,
            layer.mlp.gate_proj,
            layer.mlp.up_proj,
            layer.mlp.down_proj,
        )
    ]
    return all(type(m) is nn.Linear for m in linears) and type(inner.embed_tokens) is nn.Embedding
