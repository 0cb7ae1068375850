"""What BLIP and BLIP-2 share in pretraining: image-text contrast over a similarity matrix, and
hard negatives for image-text matching drawn from it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from components.models.clip import MAX_LOGIT_SCALE

__all__ = ["MAX_LOGIT_SCALE", "itc_loss", "sample_hard_negatives"]


def itc_loss(similarity: Tensor, scale: Tensor, negative_similarity: Tensor | None = None) -> Tensor:
    """Symmetric cross entropy over a (B, B) similarity whose diagonal holds the matching pairs; `negative_similarity`
    (B, M): each image against extra texts that match no image (NegCLIP's), which join its texts, not the other way."""
    logits = scale * similarity
    targets = torch.arange(len(logits), device=logits.device)
    text_to_image = F.cross_entropy(logits.t(), targets)
    if negative_similarity is not None:
        logits = torch.cat([logits, scale * negative_similarity], dim=1)
    return (F.cross_entropy(logits, targets) + text_to_image) / 2


def sample_hard_negatives(similarity: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """For each image a non-matching text index, and for each text a non-matching image index,
    drawn with probability softmax(similarity) over the others. Needs a batch of at least 2."""
    B = len(similarity)
    if B < 2:
        raise ValueError("hard-negative sampling needs a batch of at least 2 pairs")
    own = torch.eye(B, dtype=torch.bool, device=similarity.device)
    weights_i2t = similarity.float().masked_fill(own, float("-inf")).softmax(dim=1)
    weights_t2i = similarity.t().float().masked_fill(own, float("-inf")).softmax(dim=1)
    texts = torch.multinomial(weights_i2t, 1, generator=generator).squeeze(1)  # (B,)
    images = torch.multinomial(weights_t2i, 1, generator=generator).squeeze(1)  # (B,)
    return texts, images
