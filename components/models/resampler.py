"""Qwen-VL's position-aware adapter: one cross-attention layer that compresses any image to a fixed number of tokens.

`num_queries` learned queries (laid out on a square grid) attend once to the
image features. Queries and keys both carry fixed 2D sine-cosine positions,
the queries of their own grid and the keys of the image's patch grid, so a
query can prefer a region of the image; the values carry none. Whatever the
number of patches, the output has `num_queries` tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.positions import sincos_2d


def square_side(count: int, what: str) -> int:
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{what}: {count} is not a square number; the tokens are laid out on a square grid")
    return side


class CrossAttentionResampler(nn.Module):
    """(B, N, image_dim) on a square patch grid -> (B, num_queries, out_dim)."""

    def __init__(self, image_dim: int, out_dim: int, num_queries: int = 256, dim: int | None = None, heads: int = 4) -> None:
        super().__init__()
        dim = dim or out_dim
        if dim % heads or dim % 4:
            raise ValueError(f"CrossAttentionResampler: dim={dim} must be divisible by heads={heads} and by 4 (2D sin-cos)")
        side = square_side(num_queries, "CrossAttentionResampler num_queries")
        self.dim, self.heads = dim, heads
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.register_buffer("query_positions", sincos_2d(dim, side, side), persistent=False)  # (Q, dim)
        self.kv_proj = nn.Linear(image_dim, dim, bias=False) if image_dim != dim else nn.Identity()
        self.kv_norm = nn.LayerNorm(dim)
        self.query_norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.out_norm = nn.LayerNorm(dim)
        self.out_proj = nn.Linear(dim, out_dim)

    def forward(self, image: Tensor) -> Tensor:
        B, N, _ = image.shape
        side = square_side(N, "CrossAttentionResampler image tokens")
        key_positions = sincos_2d(self.dim, side, side).to(image.device, image.dtype)  # (N, dim)
        values = self.kv_norm(self.kv_proj(image))  # (B, N, dim)
        queries = (self.query_norm(self.queries) + self.query_positions).expand(B, -1, -1)  # (B, Q, dim)
        out, _ = self.attention(queries, values + key_positions, values, need_weights=False)  # (B, Q, dim)
        return self.out_proj(self.out_norm(out))  # (B, Q, out_dim)
