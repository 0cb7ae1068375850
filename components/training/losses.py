"""Training objectives' losses, each testable alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.models.llava import IGNORE_INDEX, next_token_loss

__all__ = ["IGNORE_INDEX", "clip_loss", "next_token_loss"]


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor, negative_emb: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of N matching pairs (CLIP).

    image_emb, text_emb: (N, E), L2-normalised; scale: the (clamped) exp of the learnable logit scale.
    The i-th image matches the i-th text; the N^2 - N other pairs are negatives.
    negative_emb (M, E), optional: extra captions that match no image (NegCLIP's hard
    negatives); they join the texts each image is scored against, not the other direction.
    """
    logits = scale * image_emb @ text_emb.t()  # (N, N)
    targets = torch.arange(logits.shape[0], device=logits.device)
    text_to_image = F.cross_entropy(logits.t(), targets)
    if negative_emb is not None:
        logits = torch.cat([logits, scale * image_emb @ negative_emb.t()], dim=1)  # (N, N + M)
    return (F.cross_entropy(logits, targets) + text_to_image) / 2

