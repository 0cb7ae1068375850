"""Post-norm (BERT-style) sublayers: `norm(x + f(x))`.

BLIP's and BLIP-2's text-side towers are BERT, which normalises after the
residual sum rather than before it (our decoder and ViT blocks are pre-norm).
The attention here reads its keys and values from a `context` of any width,
so the same sublayer is self-attention (context = x) and cross-attention
(context = image features).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

BERT_LAYER_NORM_EPS = 1e-12


class PostNormAttention(nn.Module):
    """norm(x + proj(attention(q = x, k = v = context))); mask is bool, True = may attend."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"PostNormAttention: heads={heads} must divide dim={dim}")
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=BERT_LAYER_NORM_EPS)

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        B, T, D = x.shape
        context = x if context is None else context
        S, hd = context.shape[1], D // self.heads
        q = self.query(x).view(B, T, self.heads, hd).transpose(1, 2)  # (B, heads, T, hd)
        k, v = self.key_value(context).view(B, S, 2, self.heads, hd).permute(2, 0, 3, 1, 4)  # (B, heads, S, hd) each
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, T, hd)
        return self.norm(x + self.proj(out.transpose(1, 2).reshape(B, T, D)))


class PostNormFeedForward(nn.Module):
    """norm(x + fc_out(gelu(fc_in(x))))."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(dim, hidden)
        self.fc_out = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim, eps=BERT_LAYER_NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.fc_out(F.gelu(self.fc_in(x))))
