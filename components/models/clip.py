"""CLIP dual encoder: image and text towers projected into one unit-norm space."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.text_encoder import TextEncoder
from components.models.vision import VisionTransformer

MAX_LOGIT_SCALE = 100.0


class ClipModel(nn.Module):
    def __init__(self, vision: VisionTransformer, text: TextEncoder, embed_dim: int) -> None:
        super().__init__()
        self.vision = vision
        self.text = text
        self.image_projection = nn.Linear(vision.cfg.dim, embed_dim, bias=False)
        self.text_projection = nn.Linear(text.cfg.dim, embed_dim, bias=False)
        # Learned temperature, stored as a log so it stays positive (CLIP init: 1 / 0.07).
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, pixel_values: Tensor) -> Tensor:
        return F.normalize(self.image_projection(self.vision.pooled(pixel_values)), dim=-1)  # (B, E)

    def encode_image_and_patches(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """(B, E) image embeddings and (B, N, E) patch-token embeddings, from one pass of the tower."""
        tokens = self.vision(pixel_values)  # (B, 1 + N, D), normed
        pooled = tokens[:, 0] if self.vision.cfg.pool == "cls" else tokens[:, 1:].mean(dim=1)
        return F.normalize(self.image_projection(pooled), dim=-1), F.normalize(self.image_projection(tokens[:, 1:]), dim=-1)

    def encode_words(self, ids: Tensor, mask: Tensor) -> Tensor:
        """(W, E): each word (its token ids, (W, L) with mask) as the mean of the text tower's input
        embeddings of its tokens, projected. Words out of context, so that 'circle' is one vector
        however the captions around it read (region-word alignment, see training.losses)."""
        weights = mask.to(self.text_projection.weight.dtype)[..., None]  # (W, L, 1)
        words = (self.text.token_embed(ids) * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (W, D)
        return F.normalize(self.text_projection(words), dim=-1)

    def encode_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        return F.normalize(self.text_projection(self.text(ids, mask)), dim=-1)  # (B, E)

    @property
    def max_text_len(self) -> int:
        return self.text.cfg.max_len

    def scale(self) -> Tensor:
        """exp(logit_scale), clamped as CLIP does: an unbounded temperature destabilises training."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, pixel_values: Tensor, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.encode_image(pixel_values), self.encode_text(ids, mask), self.scale()
