"""Flamingo's gated cross-attention block and the media mask that goes with it.

The block is inserted before frozen LM layers: text tokens attend to visual
tokens, then pass a feed-forward, each behind `tanh(gate)` with the gates
initialised at zero, so at initialisation the block is the identity and the
frozen LM is unchanged. Text tokens see only the visual tokens of the most
recent image before them; text before any image sees none (its cross-attention
output is zeroed).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.models.blocks import MLP, CrossAttention, RMSNorm


class GatedCrossAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int, media_dim: int | None = None) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(dim)
        self.cross_attention = CrossAttention(dim, heads, context_dim=media_dim)
        self.attention_gate = nn.Parameter(torch.zeros(1))
        self.mlp_norm = RMSNorm(dim)
        self.mlp = MLP(dim, mlp_hidden, "swiglu")
        self.mlp_gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, media: Tensor, media_mask: Tensor, sees_media: Tensor) -> Tensor:
        """x (B, T, D); media (B, M, media_dim); media_mask (B, 1, T, M) bool; sees_media (B, T) bool."""
        attended = self.cross_attention(self.attention_norm(x), media, media_mask)  # (B, T, D)
        attended = attended.masked_fill(~sees_media[..., None], 0.0)
        x = x + torch.tanh(self.attention_gate) * attended
        return x + torch.tanh(self.mlp_gate) * self.mlp(self.mlp_norm(x))


def latest_media_index(input_ids: Tensor, media_token_id: int) -> Tensor:
    """(B, T) -> (B, T): the index of the latest `<image>` at or before each token, -1 before any."""
    return (input_ids == media_token_id).long().cumsum(dim=1) - 1


def media_mask(latest: Tensor, tokens_per_media: int, num_media: int) -> tuple[Tensor, Tensor]:
    """Which visual tokens each text token may attend to, from latest_media_index (B, T).

    The visual tokens are laid out media by media, `tokens_per_media` each, `num_media` slots per
    sample. Returns media_mask (B, 1, T, num_media * tokens_per_media) and sees_media (B, T). A token
    before every image attends to all slots (never an empty softmax row) but its output is dropped
    through sees_media.
    """
    sees_media = latest >= 0
    if latest.numel() and int(latest.max()) >= num_media:
        raise ValueError(f"media_mask: a sample has {int(latest.max()) + 1} images but only {num_media} media slots")
    slot_of_token = torch.arange(num_media * tokens_per_media, device=latest.device) // tokens_per_media  # (M,)
    mask = slot_of_token[None, None, :] == latest[:, :, None]  # (B, T, M)
    mask = mask | ~sees_media[:, :, None]
    return mask[:, None], sees_media


def media_attention_mask(input_ids: Tensor, media_token_id: int, tokens_per_media: int, num_media: int) -> tuple[Tensor, Tensor]:
    """media_mask for token ids (B, T) that hold one `media_token_id` where each image stands."""
    return media_mask(latest_media_index(input_ids, media_token_id), tokens_per_media, num_media)
