"""Post-norm (BERT-style) sublayers: `norm(x + f(x))`.

BLIP's and BLIP-2's text-side towers are BERT, which normalises after the
residual sum rather than before it (our decoder and ViT blocks are pre-norm).
The attention here reads its keys and values from a `context` of any width,
so the same sublayer is self-attention (context = x) and cross-attention
(context = image features). BERT's vocabulary head transforms the hidden
state once more before the projection to words.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from components.models.blocks import CrossAttention

BERT_LAYER_NORM_EPS = 1e-12


class PostNormAttention(nn.Module):
    """norm(x + attention(q = x, k = v = context)); mask is bool, True = may attend."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.attention = CrossAttention(dim, heads, context_dim, bias=True)
        self.norm = nn.LayerNorm(dim, eps=BERT_LAYER_NORM_EPS)

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        return self.norm(x + self.attention(x, x if context is None else context, mask))


class PostNormFeedForward(nn.Module):
    """norm(x + fc_out(gelu(fc_in(x))))."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(dim, hidden)
        self.fc_out = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim, eps=BERT_LAYER_NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.fc_out(F.gelu(self.fc_in(x))))


class BertLMHead(nn.Module):
    """Vocabulary logits as BERT's prediction head makes them: decoder(norm(gelu(dense(x))))."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=BERT_LAYER_NORM_EPS)
        self.decoder = nn.Linear(dim, vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(x))))
