"""ViT image tower (CLIP-style): patches + CLS + learned positions, non-causal blocks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.models.blocks import TransformerBlock
from components.models.config import VisionConfig
from components.models.positions import sincos_2d


def patch_stem(cfg: VisionConfig) -> nn.Module:
    """Pixels (B, 3, S, S) -> patch grid (B, dim, S/p, S/p)."""
    if cfg.stem == "patch":
        return nn.Conv2d(3, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
    rest = cfg.patch_size // 4
    return nn.Sequential(
        nn.Conv2d(3, cfg.dim // 4, kernel_size=3, stride=2, padding=1),  # (B, dim/4, S/2, S/2)
        nn.GELU(),
        nn.Conv2d(cfg.dim // 4, cfg.dim // 2, kernel_size=3, stride=2, padding=1),  # (B, dim/2, S/4, S/4)
        nn.GELU(),
        nn.Conv2d(cfg.dim // 2, cfg.dim, kernel_size=rest, stride=rest),  # (B, dim, S/p, S/p)
    )


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = patch_stem(cfg)
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        if cfg.position_embedding == "learned":
            self.pos_embed = nn.Parameter(torch.randn(1, 1 + cfg.num_patches, cfg.dim) * 0.02)
        else:  # fixed, so derived from the config and not saved; CLS sits at no grid position
            grid = cfg.image_size // cfg.patch_size
            table = torch.cat([torch.zeros(1, cfg.dim), sincos_2d(cfg.dim, grid, grid)])[None]
            self.register_buffer("pos_embed", table, persistent=False)  # (1, 1 + N, dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_hidden, "gelu", "layernorm", rotary=False)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        # Derived from the config, so not saved in checkpoints.
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(1, 3, 1, 1), persistent=False)

    def _embed(self, pixel_values: Tensor) -> Tensor:
        B, C, H, W = pixel_values.shape
        size = self.cfg.image_size
        if (C, H, W) != (3, size, size):
            raise ValueError(
                f"VisionTransformer expects pixel_values (B, 3, {size}, {size}); "
                f"got {tuple(pixel_values.shape)}"
            )
        pixels = (pixel_values - self.pixel_mean) / self.pixel_std
        patches = self.patch_embed(pixels)  # (B, dim, S/p, S/p)
        patches = patches.flatten(2).transpose(1, 2)  # (B, N, dim)
        cls = self.cls_token.expand(B, -1, -1)  # (B, 1, dim)
        return torch.cat([cls, patches], dim=1) + self.pos_embed  # (B, 1 + N, dim)

    def hidden_states(self, pixel_values: Tensor, layer: int) -> Tensor:
        """Residual stream after block `layer` (python indexing: -1 last, -2 penultimate)."""
        depth = len(self.blocks)
        if not -depth <= layer < depth:
            raise ValueError(
                f"VisionTransformer.hidden_states: layer={layer} is out of range for "
                f"depth={depth}; allowed {-depth}..{depth - 1}"
            )
        last = layer % depth
        x = self._embed(pixel_values)
        # Only run the blocks we need: LLaVA reads the penultimate layer.
        for block in self.blocks[: last + 1]:
            x, _ = block(x)
        return x  # (B, 1 + N, dim)

    def forward(self, pixel_values: Tensor) -> Tensor:
        return self.norm(self.hidden_states(pixel_values, -1))  # (B, 1 + N, dim)

    def pooled(self, pixel_values: Tensor) -> Tensor:
        """(B, dim): the normed class token, or the mean of the normed patch tokens (cfg.pool)."""
        return self.pool(self.forward(pixel_values))

    def pool(self, tokens: Tensor) -> Tensor:
        """(B, 1 + N, dim) output tokens -> (B, dim), as cfg.pool says."""
        return tokens[:, 0] if self.cfg.pool == "cls" else tokens[:, 1:].mean(dim=1)
