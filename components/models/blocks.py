"""Transformer building blocks, written once and shared by every tower.

Vision, text and language towers differ only in the arguments they pass
here (norm kind, MLP kind, rotary or learned positions, which mask).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KVCache = tuple[Tensor, Tensor]  # (k, v), each (batch, heads, seq, head_dim)
CosSin = tuple[Tensor, Tensor]  # (cos, sin), each (batch, 1, seq, head_dim)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        # Normalise in float32 at least: bf16 squares lose too much precision.
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.to(x.dtype) * self.weight


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary position embeddings at arbitrary integer positions."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2 != 0:
            raise ValueError(f"RotaryEmbedding: head_dim={head_dim} must be even")
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
        # Not persistent: derived from config, so checkpoints need not carry it.
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)

    def forward(self, position_ids: Tensor) -> CosSin:
        # Angles in at least float32 even if the model runs in bf16.
        dtype = torch.promote_types(self.inv_freq.dtype, torch.float32)
        angles = position_ids.to(dtype)[..., None] * self.inv_freq.to(dtype)  # (B, T, hd/2)
        angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B, 1, T, hd)
        return angles.cos(), angles.sin()


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (i, i + hd/2) of x (B, H, T, hd) by the position angles."""
    return (x * cos + _rotate_half(x) * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with an optional KV cache.

    attn_mask is bool, broadcastable to (B, heads, T, S), True = may attend;
    the caller owns causality and padding.
    """

    def __init__(self, dim: int, heads: int, rotary: bool) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"Attention: heads={heads} must divide dim={dim}")
        self.heads = heads
        self.head_dim = dim // heads
        self.rotary = rotary
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cos_sin: CosSin | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, KVCache]:
        out, cache = self.attend(self.qkv(x), attn_mask, cos_sin, kv_cache)
        return self.proj(out), cache

    def attend(
        self,
        qkv: Tensor,
        attn_mask: Tensor | None = None,
        cos_sin: CosSin | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, KVCache]:
        """Projected q, k, v (B, T, 3 * D) -> attention output (B, T, D) before the output projection.
        Split out so a block can choose its projections per token (CogVLM's visual expert)."""
        B, T, D3 = qkv.shape
        q, k, v = qkv.view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, heads, T, head_dim)
        if self.rotary:
            if cos_sin is None:
                raise ValueError("Attention(rotary=True) needs cos_sin for the new positions")
            cos, sin = cos_sin
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if kv_cache is not None:
            k = torch.cat([kv_cache[0], k], dim=2)  # (B, heads, S = past + T, head_dim)
            v = torch.cat([kv_cache[1], v], dim=2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, heads, T, hd)
        return out.transpose(1, 2).reshape(B, T, D3 // 3), (k, v)


class MLP(nn.Module):
    """Position-wise feed-forward: GELU (ViT/CLIP), GELU's tanh approximation (DiT) or SwiGLU (LLaMA)."""

    def __init__(self, dim: int, hidden: int, kind: Literal["gelu", "gelu_tanh", "swiglu"]) -> None:
        super().__init__()
        if kind not in ("gelu", "gelu_tanh", "swiglu"):
            raise ValueError(f"MLP: unknown kind {kind!r}; allowed: 'gelu', 'gelu_tanh', 'swiglu'")
        self.kind = kind
        if kind != "swiglu":
            self.fc_in = nn.Linear(dim, hidden)
            self.fc_out = nn.Linear(hidden, dim)
        else:
            self.gate = nn.Linear(dim, hidden, bias=False)
            self.up = nn.Linear(dim, hidden, bias=False)
            self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind != "swiglu":
            return self.fc_out(F.gelu(self.fc_in(x), approximate="tanh" if self.kind == "gelu_tanh" else "none"))
        return self.down(F.silu(self.gate(x)) * self.up(x))


def make_norm(kind: Literal["layernorm", "rmsnorm"], dim: int) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(dim)
    if kind == "rmsnorm":
        return RMSNorm(dim)
    raise ValueError(f"unknown norm {kind!r}; allowed: 'layernorm', 'rmsnorm'")


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_hidden: int,
        mlp_kind: Literal["gelu", "swiglu"],
        norm: Literal["layernorm", "rmsnorm"],
        rotary: bool,
    ) -> None:
        super().__init__()
        self.attn_norm = make_norm(norm, dim)
        self.attn = Attention(dim, heads, rotary)
        self.mlp_norm = make_norm(norm, dim)
        self.mlp = MLP(dim, mlp_hidden, mlp_kind)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cos_sin: CosSin | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, KVCache]:
        attn_out, cache = self.attn(self.attn_norm(x), attn_mask, cos_sin, kv_cache)
        x = x + attn_out
        x = x + self.mlp(self.mlp_norm(x))
        return x, cache


class CrossAttention(nn.Module):
    """Multi-head attention of x (B, T, dim) over a context (B, S, context_dim); mask is bool, True = may
    attend. Without biases (Flamingo's gated cross-attention, the Perceiver Resampler) unless `bias`
    (BERT-style layers such as the Q-Former's)."""

    def __init__(
        self, dim: int, heads: int, context_dim: int | None = None, head_dim: int | None = None, bias: bool = False
    ) -> None:
        super().__init__()
        if head_dim is None and dim % heads != 0:
            raise ValueError(f"CrossAttention: heads={heads} must divide dim={dim} (or give head_dim)")
        self.heads = heads
        self.head_dim = head_dim or dim // heads
        inner = heads * self.head_dim
        self.query = nn.Linear(dim, inner, bias=bias)
        self.key_value = nn.Linear(context_dim or dim, 2 * inner, bias=bias)
        self.proj = nn.Linear(inner, dim, bias=bias)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:
        B, T, _ = x.shape
        S = context.shape[1]
        q = self.query(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)  # (B, heads, T, hd)
        k, v = self.key_value(context).view(B, S, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, heads, S, hd)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, T, hd)
        return self.proj(out.transpose(1, 2).reshape(B, T, -1))
