"""BLIP's three pretraining losses, one per way of running its MED text transformer.

ITC: the pooled image against the unimodal text encoder's [CLS]. ITM: the
image-grounded encoder's [ENC] says whether a pair matches; for each image a
text, and for each text an image, are drawn as hard negatives in proportion to
the softmaxed ITC similarity. LM: the image-grounded decoder writes the caption
after [DEC], with BLIP's label smoothing of 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from components.models.blip import BlipModel
from components.models.llava import IGNORE_INDEX
from components.training.matching import itc_loss, sample_hard_negatives

LM_LABEL_SMOOTHING = 0.1


def blip_losses(
    model: BlipModel, pixel_values: Tensor, text_ids: Tensor, text_mask: Tensor, negative_ids: Tensor | None = None,
    negative_mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """{"itc", "itm", "lm", "loss" (their sum), "itm_acc"} for a batch of matching pairs; with `negative_ids` (each
    caption wrong in one detail) those join each image's texts in ITC, as NegCLIP's do in CLIP's loss."""
    features = model.image_features(pixel_values)  # (B, 1 + N, Dv)
    B = len(features)
    image_emb = model.image_embedding(features)
    similarity = image_emb @ model.encode_text(text_ids, text_mask).t()  # (B, B)
    negative = image_emb @ model.encode_text(negative_ids, negative_mask).t() if negative_ids is not None else None
    itc = itc_loss(similarity, model.scale(), negative)

    with torch.no_grad():
        neg_text, neg_image = sample_hard_negatives(similarity.detach())
    itm_logits = model.match_logits(
        torch.cat([features, features, features[neg_image]]),
        torch.cat([text_ids, text_ids[neg_text], text_ids]),
        torch.cat([text_mask, text_mask[neg_text], text_mask]),
    )  # (3B, 2): the pairs, (image, hard text), (hard image, text)
    itm_labels = torch.cat([torch.ones(B), torch.zeros(2 * B)]).long().to(itm_logits.device)
    itm = F.cross_entropy(itm_logits, itm_labels)

    lm = caption_loss(model, features, text_ids, text_mask)

    return {
        "itc": itc, "itm": itm, "lm": lm, "loss": itc + itm + lm,
        "itm_acc": (itm_logits.argmax(-1) == itm_labels).float().mean().detach(),
    }


def caption_loss(model: BlipModel, features: Tensor, text_ids: Tensor, text_mask: Tensor) -> Tensor:
    """The image-grounded decoder's label-smoothed cross-entropy on every caption token after [DEC]."""
    logits = model.caption_logits(features, text_ids, text_mask)  # (B, T, V)
    targets = text_ids.masked_fill(text_mask == 0, IGNORE_INDEX)
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, label_smoothing=LM_LABEL_SMOOTHING)
