"""BLIP's pretraining model: an image tower and a MED text transformer with the heads of its three losses.

Image-text contrast (ITC) between the pooled image and the unimodal text
encoder's [CLS]; image-text matching (ITM) on the image-grounded encoder's
[ENC]; language modelling (LM) with the image-grounded decoder and BERT's
prediction head (BLIP ties that head's output matrix to the word table; here it
is its own, so a freeze plan can hold `text` and `lm_head` apart). The losses are
components/training/blip_losses.py. `encode_image`, `encode_text` and `scale`
are those of ClipModel, so zero-shot classification, retrieval and the
contrastive pyfunc take a BLIP model as they take a CLIP one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.clip import MAX_LOGIT_SCALE
from components.models.med import MedMode, MedTextTransformer
from components.models.post_norm import BertLMHead
from components.models.vision import VisionTransformer


class BlipModel(nn.Module):
    def __init__(self, vision: VisionTransformer, text: MedTextTransformer, vocab_size: int, embed_dim: int) -> None:
        super().__init__()
        self.vision = vision
        self.text = text
        dim = text.cfg.dim
        self.image_projection = nn.Linear(vision.cfg.dim, embed_dim)
        self.text_projection = nn.Linear(dim, embed_dim)
        self.itm_head = nn.Linear(dim, 2)
        self.lm_head = BertLMHead(dim, vocab_size)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # BLIP's temperature 0.07, learned

    def image_features(self, pixel_values: Tensor) -> Tensor:
        return self.vision(pixel_values)  # (B, 1 + N, Dv), normed

    def image_embedding(self, features: Tensor) -> Tensor:
        return F.normalize(self.image_projection(self.vision.pool(features)), dim=-1)  # (B, E)

    def encode_image(self, pixel_values: Tensor) -> Tensor:
        return self.image_embedding(self.image_features(pixel_values))

    def encode_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, E): the unimodal encoder's [CLS], projected and normalised."""
        return F.normalize(self.text_projection(self.text(ids, mask, "text")[:, 0]), dim=-1)

    @property
    def max_text_len(self) -> int:
        return self.text.cfg.max_text_len

    def scale(self) -> Tensor:
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def grounded(self, features: Tensor, ids: Tensor, mask: Tensor, mode: MedMode) -> Tensor:
        """(B, 1 + T, D): the text read with the image, by the encoder or the decoder."""
        return self.text(ids, mask, mode, features)

    def match_logits(self, features: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, 2) ITM logits, [no match, match], from the image-grounded encoder's [ENC]."""
        return self.itm_head(self.grounded(features, ids, mask, "encoder")[:, 0])

    def caption_logits(self, features: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        """(B, T, V): after [DEC] and each text token, the next token's logits; position t predicts ids[:, t]."""
        return self.lm_head(self.grounded(features, ids, mask, "decoder")[:, :-1])
