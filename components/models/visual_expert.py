"""CogVLM's visual expert: in every LM layer, image tokens have weights of their own.

Each LM block gets a second QKV projection, attention output projection and MLP,
of the same shapes as the LM's and initialised from them, used for image tokens
only; text tokens keep the LM's own weights and the norms are shared. All tokens
still attend to each other in one causal attention, so the frozen LM's behaviour
on text alone is untouched while the image tokens get a deep, trainable path
instead of a shallow projection.

The experts are a part of their own (`visual_expert`, one per LM block) rather
than hidden inside the LM's blocks, so a freeze plan can train them while the LM
stays frozen, and a stage can start them from a text-only LM checkpoint.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import Tensor, nn

from components.models.blocks import CosSin, KVCache, TransformerBlock


def _per_token(image_mask: Tensor, image_out: Tensor, text_out: Tensor) -> Tensor:
    return torch.where(image_mask[..., None], image_out, text_out)


class VisualExpert(nn.Module):
    """The image tokens' copy of one LM block's QKV, attention output projection and MLP."""

    def __init__(self, block: TransformerBlock) -> None:
        super().__init__()
        self.qkv = copy.deepcopy(block.attn.qkv)
        self.proj = copy.deepcopy(block.attn.proj)
        self.mlp = copy.deepcopy(block.mlp)

    def forward(
        self,
        block: TransformerBlock,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cos_sin: CosSin | None = None,
        kv_cache: KVCache | None = None,
        image_mask: Tensor | None = None,
    ) -> tuple[Tensor, KVCache]:
        """`block` with this expert's weights for the tokens image_mask (B, T) marks; None = all text."""
        if image_mask is None or not bool(image_mask.any()):
            return block(x, attn_mask=attn_mask, cos_sin=cos_sin, kv_cache=kv_cache)
        h = block.attn_norm(x)
        qkv = _per_token(image_mask, self.qkv(h), block.attn.qkv(h))  # (B, T, 3D)
        out, cache = block.attn.attend(qkv, attn_mask, cos_sin, kv_cache)
        x = x + _per_token(image_mask, self.proj(out), block.attn.proj(out))
        h = block.mlp_norm(x)
        return x + _per_token(image_mask, self.mlp(h), block.mlp(h)), cache


def visual_experts(blocks: nn.ModuleList) -> nn.ModuleList:
    """One expert per LM block, each initialised from it."""
    return nn.ModuleList(VisualExpert(block) for block in blocks)


_LM_BLOCK_WEIGHT = re.compile(r"^language_model\.blocks\.(\d+)\.(attn\.qkv|attn\.proj|mlp)\.(.+)$")


def expert_weights_from_lm(weights: dict[str, Tensor], part: str = "visual_expert") -> dict[str, Tensor]:
    """`part.*` tensors copied from a checkpoint's LM blocks: how CogVLM starts its experts."""
    derived = {}
    for name, tensor in weights.items():
        match = _LM_BLOCK_WEIGHT.match(name)
        if match:
            layer, module, rest = match.groups()
            derived[f"{part}.{layer}.{module.removeprefix('attn.')}.{rest}"] = tensor
    return derived
