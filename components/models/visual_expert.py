"""CogVLM's visual expert: an LM block whose image tokens have their own weights.

Every LM layer gets a second QKV projection, attention output projection and
MLP, of the same shapes as the LM's and initialised from them, used for image
tokens only; text tokens keep the LM's own weights and the norms are shared.
All tokens still attend to each other in one causal attention, so the frozen
LM's behaviour on text alone is untouched while the image tokens get a deep,
trainable path instead of a shallow projection.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from components.models.blocks import CosSin, KVCache, TransformerBlock


def _per_token(image_mask: Tensor, image_out: Tensor, text_out: Tensor) -> Tensor:
    return torch.where(image_mask[..., None], image_out, text_out)


class VisualExpertBlock(nn.Module):
    """A pre-norm LM block (attention + MLP) with an image copy of its QKV, output projection and MLP."""

    def __init__(self, block: TransformerBlock) -> None:
        super().__init__()
        self.attn_norm, self.attn, self.mlp_norm, self.mlp = block.attn_norm, block.attn, block.mlp_norm, block.mlp
        self.image_qkv = copy.deepcopy(block.attn.qkv)
        self.image_proj = copy.deepcopy(block.attn.proj)
        self.image_mlp = copy.deepcopy(block.mlp)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cos_sin: CosSin | None = None,
        kv_cache: KVCache | None = None,
        image_mask: Tensor | None = None,
    ) -> tuple[Tensor, KVCache]:
        """image_mask (B, T) bool marks the image tokens among the T new ones; None = all text."""
        if image_mask is None:
            image_mask = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        h = self.attn_norm(x)
        qkv = _per_token(image_mask, self.image_qkv(h), self.attn.qkv(h))  # (B, T, 3D)
        out, cache = self.attn.attend(qkv, attn_mask, cos_sin, kv_cache)
        x = x + _per_token(image_mask, self.image_proj(out), self.attn.proj(out))
        h = self.mlp_norm(x)
        return x + _per_token(image_mask, self.image_mlp(h), self.mlp(h)), cache


def add_visual_experts(blocks: nn.ModuleList) -> nn.ModuleList:
    """The LM's blocks, each wrapped with a visual expert initialised from it (the LM's own
    parameters are shared, not copied, so freezing the LM freezes them)."""
    return nn.ModuleList(VisualExpertBlock(block) for block in blocks)
