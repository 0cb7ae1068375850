"""CLIP text tower: bidirectional transformer, mean-pooled over real tokens."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.models.blocks import TransformerBlock
from components.models.config import TextEncoderConfig


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextEncoderConfig, vocab_size: int, pad_id: int) -> None:
        super().__init__()
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"TextEncoder: pad_id={pad_id} must be in [0, vocab_size={vocab_size})")
        self.cfg = cfg
        self.token_embed = nn.Embedding(vocab_size, cfg.dim, padding_idx=pad_id)
        self.pos_embed = nn.Embedding(cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_hidden, "gelu", "layernorm", rotary=False)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, dim): the mean of the real tokens' states."""
        return self.pool(self.tokens(ids, mask), mask)

    @staticmethod
    def pool(tokens: Tensor, mask: Tensor) -> Tensor:
        """(B, T, dim) token states -> (B, dim), the mean over the real tokens."""
        weights = mask.to(tokens.dtype)[..., None]  # (B, T, 1)
        return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def tokens(self, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, T, dim): every token's final, normed state (a diffusion transformer cross-attends to them)."""
        B, T = ids.shape
        if T > self.cfg.max_len:
            raise ValueError(f"TextEncoder: sequence length {T} exceeds max_len={self.cfg.max_len}")
        keep = mask.bool()  # (B, T), True = real token
        positions = torch.arange(T, device=ids.device)
        x = self.token_embed(ids) + self.pos_embed(positions)  # (B, T, dim)
        # Every query sees all real keys, and itself: an all-pad row then yields
        # finite (ignored) values instead of NaN from a fully masked softmax.
        itself = torch.eye(T, dtype=torch.bool, device=ids.device)
        key_mask = keep[:, None, None, :] | itself  # (B, 1, T, T)
        for block in self.blocks:
            x, _ = block(x, attn_mask=key_mask)
        return self.norm(x)
