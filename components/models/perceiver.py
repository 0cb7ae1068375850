"""Flamingo's Perceiver Resampler: a fixed set of latents reads any number of image or video features.

Each frame's features get that frame's learned time embedding; the frames are
then one flat context. In every layer the latents attend to `[context; latents]`
(so they also exchange information among themselves) and pass a feed-forward,
both residual; a final LayerNorm closes it. Output: `num_latents` tokens per
media item, however many frames and patches went in.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from components.models.blocks import CrossAttention

Activation = Literal["gelu", "relu"]


class PerceiverLayer(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, mlp_hidden: int, activation: Activation) -> None:
        super().__init__()
        self.context_norm = nn.LayerNorm(dim)
        self.latents_norm = nn.LayerNorm(dim)
        self.attention = CrossAttention(dim, heads, head_dim=head_dim)
        # Flamingo uses GELU; IDEFICS, HF's open reproduction, ReLU (the parity test uses that).
        self.feed_forward = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, mlp_hidden, bias=False),
            nn.GELU() if activation == "gelu" else nn.ReLU(),
            nn.Linear(mlp_hidden, dim, bias=False),
        )

    def forward(self, context: Tensor, latents: Tensor) -> Tensor:
        context, normed = self.context_norm(context), self.latents_norm(latents)
        latents = latents + self.attention(normed, torch.cat([context, normed], dim=1))  # (B, n, D)
        return latents + self.feed_forward(latents)


class PerceiverResampler(nn.Module):
    """(B, frames, N, dim) or (B, N, dim) -> (B, num_latents, dim)."""

    def __init__(
        self,
        dim: int,
        num_latents: int = 64,
        depth: int = 2,
        heads: int = 4,
        head_dim: int | None = None,
        mlp_ratio: float = 4.0,
        max_frames: int = 8,
        activation: Activation = "gelu",
    ) -> None:
        super().__init__()
        if activation not in ("gelu", "relu"):
            raise ValueError(f"PerceiverResampler: unknown activation {activation!r}; allowed: gelu, relu")
        self.max_frames = max_frames
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.time_embedding = nn.Parameter(torch.randn(max_frames, 1, dim) * 0.02)  # one vector per frame
        self.layers = nn.ModuleList(
            PerceiverLayer(dim, heads, head_dim or dim // heads, int(dim * mlp_ratio), activation) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() == 3:
            features = features[:, None]  # an image is a one-frame video: (B, 1, N, D)
        B, frames, N, D = features.shape
        if frames > self.max_frames:
            raise ValueError(f"PerceiverResampler: {frames} frames, but time embeddings exist for max_frames={self.max_frames}")
        context = (features + self.time_embedding[:frames]).reshape(B, frames * N, D)  # (B, frames * N, D)
        latents = self.latents.expand(B, -1, -1)  # (B, n, D)
        for layer in self.layers:
            latents = layer(context, latents)
        return self.norm(latents)
