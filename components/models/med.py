"""BLIP's multimodal mixture of encoder-decoder (MED): one text transformer, three ways to run it.

- `text`: the unimodal text encoder (bidirectional self-attention, no image); its first
  token, [CLS], is the text's embedding for image-text contrast.
- `encoder`: the image-grounded text encoder; a cross-attention to the image features sits
  between self-attention and feed-forward in every layer, and the first token, [ENC], holds
  the pair's joint representation for image-text matching.
- `decoder`: the image-grounded text decoder; causal self-attention of its own, the rest
  (embeddings, cross-attention, feed-forward) shared with the encoder, as BLIP ties them; the
  first token, [DEC], starts the caption.

The three mode tokens are learned vectors put before the text, where BLIP puts the
[CLS], [ENC] and [DEC] entries of its vocabulary. Sublayers are BERT's post-norm ones.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from components.models.config import MedConfig
from components.models.post_norm import BERT_LAYER_NORM_EPS, PostNormAttention, PostNormFeedForward

MedMode = Literal["text", "encoder", "decoder"]
MODES: tuple[MedMode, ...] = ("text", "encoder", "decoder")


class MedLayer(nn.Module):
    def __init__(self, cfg: MedConfig, image_dim: int) -> None:
        super().__init__()
        self.self_attention = PostNormAttention(cfg.dim, cfg.heads)  # the encoders'
        self.decoder_self_attention = PostNormAttention(cfg.dim, cfg.heads)  # the decoder's own
        self.cross_attention = PostNormAttention(cfg.dim, cfg.heads, context_dim=image_dim)
        self.feed_forward = PostNormFeedForward(cfg.dim, cfg.mlp_hidden)

    def forward(self, x: Tensor, mode: MedMode, mask: Tensor, image: Tensor | None) -> Tensor:
        attention = self.decoder_self_attention if mode == "decoder" else self.self_attention
        x = attention(x, mask=mask)
        if mode != "text":
            x = self.cross_attention(x, context=image)
        return self.feed_forward(x)


def med_attention_mask(mode: MedMode, text_mask: Tensor) -> Tensor:
    """(B, 1, 1 + T, 1 + T) bool, True = may attend, for [mode token; text] with padding text_mask (B, T):
    bidirectional for the encoders, causal for the decoder; padded keys never attended, and every
    token sees itself."""
    B, T = text_mask.shape
    keys = torch.cat([text_mask.new_ones(B, 1), text_mask], dim=1).bool()  # (B, 1 + T)
    allowed = keys[:, None, None, :].expand(B, 1, T + 1, T + 1)
    if mode == "decoder":
        allowed = allowed & torch.ones(T + 1, T + 1, dtype=torch.bool, device=text_mask.device).tril()
    return allowed | torch.eye(T + 1, dtype=torch.bool, device=text_mask.device)


class MedTextTransformer(nn.Module):
    """text ids (B, T) [+ image features (B, N, image_dim)] -> hidden states (B, 1 + T, dim), mode token first."""

    def __init__(self, cfg: MedConfig, image_dim: int, vocab_size: int, pad_id: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.word_embedding = nn.Embedding(vocab_size, cfg.dim, padding_idx=pad_id)
        self.mode_tokens = nn.Parameter(torch.randn(len(MODES), cfg.dim) * 0.02)  # [CLS], [ENC], [DEC]
        self.position_embedding = nn.Embedding(cfg.max_text_len + 1, cfg.dim)
        self.input_norm = nn.LayerNorm(cfg.dim, eps=BERT_LAYER_NORM_EPS)
        self.layers = nn.ModuleList(MedLayer(cfg, image_dim) for _ in range(cfg.depth))

    def embed(self, mode: MedMode, ids: Tensor) -> Tensor:
        if ids.shape[1] > self.cfg.max_text_len:
            raise ValueError(f"MED: text of {ids.shape[1]} tokens is longer than max_text_len={self.cfg.max_text_len}")
        first = self.mode_tokens[MODES.index(mode)].expand(ids.shape[0], 1, -1)
        x = torch.cat([first, self.word_embedding(ids)], dim=1)  # (B, 1 + T, D)
        return x + self.position_embedding(torch.arange(x.shape[1], device=ids.device))[None]

    def forward(self, ids: Tensor, mask: Tensor | None = None, mode: MedMode = "text", image: Tensor | None = None) -> Tensor:
        if mode not in MODES:
            raise ValueError(f"unknown MED mode {mode!r}; allowed: {', '.join(MODES)}")
        if mode != "text" and image is None:
            raise ValueError(f"the {mode} mode reads the image: pass its features")
        mask = torch.ones_like(ids) if mask is None else mask
        x = self.input_norm(self.embed(mode, ids))
        attention_mask = med_attention_mask(mode, mask)
        for layer in self.layers:
            x = layer(x, mode, attention_mask, image)
        return x
