"""BLIP-2 stage 1: the Q-Former learns to read a frozen image tower through three objectives.

The model holds the frozen tower, the Q-Former and the heads of the three
stage-1 losses (components/training/qformer_losses.py): projections into a
shared space for image-text contrast (ITC), a two-way head for image-text
matching (ITM), and BERT's vocabulary head for image-grounded text generation (ITG).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.post_norm import BertLMHead
from components.models.qformer import QFormer, QFormerMaskKind
from components.models.vision import VisionTransformer


class QFormerPretrainModel(nn.Module):
    def __init__(
        self, vision: VisionTransformer, qformer: QFormer, vocab_size: int, embed_dim: int, bos_id: int, vision_feature_layer: int = -1
    ) -> None:
        super().__init__()
        self.vision = vision
        self.qformer = qformer
        dim = qformer.cfg.dim
        self.vision_feature_layer = vision_feature_layer
        self.bos_id = bos_id  # starts the caption in image-grounded generation (BLIP-2's [DEC])
        self.image_projection = nn.Linear(dim, embed_dim)
        self.text_projection = nn.Linear(dim, embed_dim)
        self.itm_head = nn.Linear(dim, 2)
        self.lm_head = BertLMHead(dim, vocab_size)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # BLIP-2's temperature 0.07, learned

    def image_features(self, pixel_values: Tensor) -> Tensor:
        return self.vision.hidden_states(pixel_values, self.vision_feature_layer)  # (B, 1 + N, Dv)

    def query_embeddings(self, image: Tensor) -> Tensor:
        """(B, Q, E) unit vectors: each query's view of the image in the contrastive space."""
        return F.normalize(self.image_projection(self.qformer(image)), dim=-1)

    def text_embedding(self, text_ids: Tensor, text_mask: Tensor) -> Tensor:
        """(B, E) unit vectors from the text stream alone (its first token, as BERT's [CLS])."""
        hidden = self.qformer(None, text_ids, text_mask, mask_kind="unimodal", use_queries=False)
        return F.normalize(self.text_projection(hidden[:, 0]), dim=-1)

    def joint(self, image: Tensor, text_ids: Tensor, text_mask: Tensor, mask_kind: QFormerMaskKind) -> Tensor:
        """(B, Q + T, D): queries and text through the Q-Former together under one of its masks."""
        return self.qformer(image, text_ids, text_mask, mask_kind=mask_kind)
