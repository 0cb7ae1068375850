"""BLIP-2's Querying Transformer (Q-Former).

A small BERT whose input is one sequence `[queries; text]`: `num_queries`
learned query vectors followed by (optionally) text tokens. The two streams
share every self-attention layer; only the queries cross-attend to the frozen
image features (in layers 0, N, 2N, ...), and queries and text each have their
own feed-forward. What each stream may see of the other is the self-attention
mask, which the objective picks (`qformer_self_attention_mask`): BLIP-2's three
stage-1 losses differ only there.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from components.models.config import QFormerConfig
from components.models.post_norm import BERT_LAYER_NORM_EPS, PostNormAttention, PostNormFeedForward

QFormerMaskKind = Literal["unimodal", "bidirectional", "multimodal_causal"]


def qformer_self_attention_mask(kind: QFormerMaskKind, num_queries: int, text_mask: Tensor) -> Tensor:
    """(B, 1, Q + T, Q + T) bool, True = may attend, for `[queries; text]` with text padding `text_mask` (B, T).

    unimodal (ITC): queries see queries, text sees text; neither stream sees the other.
    bidirectional (ITM): every token sees every token.
    multimodal_causal (image-grounded generation): queries see queries only; text sees all queries
    and the text tokens up to itself.
    Padded text keys are never attended to; queries always see each other, and every token
    sees itself, so no row is empty (an empty row would put NaN into the whole batch).
    """
    B, T = text_mask.shape
    Q, L = num_queries, num_queries + text_mask.shape[1]
    allowed = torch.ones(L, L, dtype=torch.bool, device=text_mask.device)
    if kind == "unimodal":
        allowed[:Q, Q:] = False
        allowed[Q:, :Q] = False
    elif kind == "multimodal_causal":
        allowed[:Q, Q:] = False
        allowed[Q:, Q:] = torch.ones(T, T, dtype=torch.bool, device=text_mask.device).tril()
    elif kind != "bidirectional":
        raise ValueError(f"unknown Q-Former mask {kind!r}; allowed: unimodal, bidirectional, multimodal_causal")
    keys = torch.cat([text_mask.new_ones(B, Q), text_mask], dim=1).bool()  # (B, L)
    itself = torch.eye(L, dtype=torch.bool, device=text_mask.device)
    return (allowed[None, None] & keys[:, None, None, :]) | itself  # (B, 1, L, L)


class QFormerLayer(nn.Module):
    def __init__(self, cfg: QFormerConfig, image_dim: int, cross_attention: bool) -> None:
        super().__init__()
        self.self_attention = PostNormAttention(cfg.dim, cfg.heads)
        self.cross_attention = PostNormAttention(cfg.dim, cfg.heads, context_dim=image_dim) if cross_attention else None
        self.query_feed_forward = PostNormFeedForward(cfg.dim, cfg.mlp_hidden)
        self.text_feed_forward = PostNormFeedForward(cfg.dim, cfg.mlp_hidden)

    def forward(self, x: Tensor, num_queries: int, image: Tensor | None, self_mask: Tensor | None) -> Tensor:
        x = self.self_attention(x, mask=self_mask)  # (B, Q + T, D)
        queries, text = x[:, :num_queries], x[:, num_queries:]
        if self.cross_attention is not None and num_queries:
            if image is None:
                raise ValueError("QFormerLayer: this layer cross-attends to the image, but no image features were given")
            queries = self.cross_attention(queries, context=image)  # (B, Q, D)
        parts = [self.query_feed_forward(queries)] if num_queries else []
        if text.shape[1]:
            parts.append(self.text_feed_forward(text))
        return torch.cat(parts, dim=1)


class QFormer(nn.Module):
    """image features (B, N, image_dim) [+ text ids (B, T)] -> hidden states (B, Q [+ T], dim)."""

    def __init__(self, cfg: QFormerConfig, image_dim: int, vocab_size: int, pad_id: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.query_tokens = nn.Parameter(torch.randn(1, cfg.num_queries, cfg.dim) * 0.02)
        self.word_embedding = nn.Embedding(vocab_size, cfg.dim, padding_idx=pad_id)
        self.position_embedding = nn.Embedding(cfg.max_text_len, cfg.dim)
        self.input_norm = nn.LayerNorm(cfg.dim, eps=BERT_LAYER_NORM_EPS)
        self.layers = nn.ModuleList(
            QFormerLayer(cfg, image_dim, cross_attention=i % cfg.cross_attention_every == 0) for i in range(cfg.depth)
        )

    def embed_text(self, ids: Tensor) -> Tensor:
        if ids.shape[1] > self.cfg.max_text_len:
            raise ValueError(f"QFormer: text of {ids.shape[1]} tokens is longer than max_text_len={self.cfg.max_text_len}")
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.word_embedding(ids) + self.position_embedding(positions)[None]  # (B, T, D)

    def forward(
        self,
        image: Tensor | None,
        text_ids: Tensor | None = None,
        text_mask: Tensor | None = None,
        mask_kind: QFormerMaskKind = "bidirectional",
        use_queries: bool = True,
    ) -> Tensor:
        """`use_queries=False` runs the text stream alone (BLIP-2's text encoder for ITC)."""
        parts, B = [], (image.shape[0] if image is not None else text_ids.shape[0])
        num_queries = self.cfg.num_queries if use_queries else 0
        if num_queries:
            parts.append(self.query_tokens.expand(B, -1, -1))
        mask = None
        if text_ids is not None:
            parts.append(self.embed_text(text_ids))
            text_mask = torch.ones_like(text_ids) if text_mask is None else text_mask
            mask = qformer_self_attention_mask(mask_kind, num_queries, text_mask)
        x = self.input_norm(torch.cat(parts, dim=1))  # (B, Q + T, D)
        for layer in self.layers:
            x = layer(x, num_queries, image, mask)
        return x
