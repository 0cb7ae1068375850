"""Training objectives' losses, each testable alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.models.llava import IGNORE_INDEX, next_token_loss

__all__ = ["IGNORE_INDEX", "clip_loss", "next_token_loss"]


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of N matching pairs (CLIP).

    image_emb, text_emb: (N, E), L2-normalised; scale: the (clamped) exp of the learnable logit scale.
    The i-th image matches the i-th text; the N^2 - N other pairs are negatives.
    """
    logits = scale * image_emb @ text_emb.t()  # (N, N)
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2

