"""The diffusion transformer: adaLN-Zero blocks over spacetime patches, conditioned on the timestep and a caption.

Every block regresses a shift, a scale and a gate for its attention and for
its MLP from the conditioning vector c (the timestep's embedding plus the
pooled caption's), and starts as the identity: the gates' projection, and the
output projection of the optional cross-attention to the caption's tokens,
are zero at initialisation (DiT's adaLN-Zero; PixArt-alpha's cross-attention).
A block's attention runs over all tokens, within each frame (`space`) or
across frames at each place (`time`). A dropped caption (classifier-free
guidance) is a learned null caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.blocks import MLP, Attention, CrossAttention
from components.models.config import DiTConfig
from components.models.diffusion.patches import Grid, patchify, unpatchify
from components.models.positions import sincos_1d, sincos_spacetime

Axis = Literal["full", "space", "time"]
FREQUENCY_DIM = 256  # sinusoidal features of the timestep, before its MLP (DiT's)
NORM_EPS = 1e-6


@dataclass(frozen=True)
class Caption:
    """A caption as the text encoder gives it: pooled (B, E), tokens (B, L, D) and their mask (B, L), True = real."""

    pooled: Tensor
    tokens: Tensor
    mask: Tensor


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x (B, N, D) scaled and shifted per sample by (B, D) vectors."""
    return x * (1 + scale[:, None]) + shift[:, None]


def _zero(module: nn.Linear) -> nn.Linear:
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module


class AdaLNZeroBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int, axis: Axis, context_dim: int | None = None) -> None:
        super().__init__()
        self.axis = axis
        self.attn_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.attn = Attention(dim, heads, rotary=False)
        self.cross_norm = nn.LayerNorm(dim, eps=NORM_EPS) if context_dim else None
        self.cross = CrossAttention(dim, heads, context_dim, bias=True) if context_dim else None
        if self.cross is not None:
            _zero(self.cross.proj)
        self.mlp_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.mlp = MLP(dim, mlp_hidden, "gelu_tanh")
        self.modulation = _zero(nn.Linear(dim, 6 * dim))  # from silu(c): the shifts, scales and gates

    def forward(self, x: Tensor, c: Tensor, grid: Grid, caption: Caption | None = None) -> Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.modulation(F.silu(c)).chunk(6, dim=-1)
        x = x + gate_a[:, None] * self._attend(modulate(self.attn_norm(x), shift_a, scale_a), grid)
        if self.cross is not None:
            if caption is None:
                raise ValueError("this block cross-attends to the caption's tokens; pass the caption")
            mask = caption.mask[:, None, None, :]  # (B, 1, 1, L)
            x = x + self.cross(self.cross_norm(x), caption.tokens, mask)
        return x + gate_m[:, None] * self.mlp(modulate(self.mlp_norm(x), shift_m, scale_m))

    def _attend(self, h: Tensor, grid: Grid) -> Tensor:
        """Self-attention of h (B, T * H * W, D) over all tokens, each frame's, or each place's."""
        B, N, D = h.shape
        T, rows, cols = grid
        if self.axis == "full":
            return self.attn(h)[0]
        if self.axis == "space":
            return self.attn(h.reshape(B * T, rows * cols, D))[0].reshape(B, N, D)
        places = h.reshape(B, T, rows * cols, D).transpose(1, 2).reshape(B * rows * cols, T, D)
        out = self.attn(places)[0]  # (B * places, T, D)
        return out.reshape(B, rows * cols, T, D).transpose(1, 2).reshape(B, N, D)


class DiffusionTransformer(nn.Module):
    def __init__(self, cfg: DiTConfig, channels: int, caption_dim: int, token_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels = channels
        patch = channels * cfg.patch_frames * cfg.patch_size**2
        self.patch_embed = nn.Linear(patch, cfg.dim)
        self.time_embed = nn.Sequential(nn.Linear(FREQUENCY_DIM, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.caption_embed = nn.Linear(caption_dim, cfg.dim)
        self.null_pooled = nn.Parameter(torch.randn(caption_dim) * 0.02)
        self.null_tokens = nn.Parameter(torch.randn(token_dim) * 0.02)
        axes: list[Axis] = ["full"] * cfg.depth if cfg.attention == "full" else ["space", "time"] * (cfg.depth // 2)
        context = token_dim if cfg.cross_attention else None
        self.blocks = nn.ModuleList(AdaLNZeroBlock(cfg.dim, cfg.heads, cfg.mlp_hidden, axis, context) for axis in axes)
        self.final_norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=NORM_EPS)
        self.final_modulation = _zero(nn.Linear(cfg.dim, 2 * cfg.dim))
        self.final = _zero(nn.Linear(cfg.dim, patch))

    def null_caption(self, caption: Caption, drop: Tensor) -> Caption:
        """The caption with the rows where drop (B,) is True replaced by the learned null caption (one token)."""
        d = drop.to(caption.pooled.device).bool()
        pooled = torch.where(d[:, None], self.null_pooled.to(caption.pooled.dtype), caption.pooled)
        tokens = torch.where(d[:, None, None], self.null_tokens.to(caption.tokens.dtype), caption.tokens)
        only_first = torch.zeros_like(caption.mask, dtype=torch.bool)
        only_first[:, 0] = True
        return Caption(pooled, tokens, torch.where(d[:, None], only_first, caption.mask.bool()))

    def forward(self, x: Tensor, t: Tensor, caption: Caption, drop: Tensor | None = None) -> Tensor:
        """The prediction (B, C, T, H, W) for noisy latents x (B, C, T, H, W) at timesteps t (B,)."""
        if drop is not None:
            caption = self.null_caption(caption, drop)
        tokens, grid = patchify(x, self.cfg.patch_frames, self.cfg.patch_size)
        positions = sincos_spacetime(self.cfg.dim, *grid).to(x.device, x.dtype)
        h = self.patch_embed(tokens) + positions  # (B, N, dim)
        c = self.time_embed(sincos_1d(FREQUENCY_DIM, t).to(x.dtype)) + self.caption_embed(caption.pooled)  # (B, dim)
        for block in self.blocks:
            h = block(h, c, grid, caption)
        shift, scale = self.final_modulation(F.silu(c)).chunk(2, dim=-1)
        out = self.final(modulate(self.final_norm(h), shift, scale))
        return unpatchify(out, grid, self.channels, self.cfg.patch_frames, self.cfg.patch_size)
