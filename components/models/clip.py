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

    def encode_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        return F.normalize(self.text_projection(self.text(ids, mask)), dim=-1)  # (B, E)

    def forward(self, pixel_values: Tensor, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # Clamp as CLIP does: an unbounded temperature destabilises training.
        scale = self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        return self.encode_image(pixel_values), self.encode_text(ids, mask), scale
