"""BLIP-2's three stage-1 losses, each under its own Q-Former attention mask.

ITC: image-text contrast; an image's similarity to a text is the best of its
queries' (max over queries). ITM: is this image-text pair a match? Negatives
are hard: for each image a text (and for each text an image) sampled in
proportion to the softmaxed ITC similarity, its own pair excluded. ITG: the
text stream, behind a causal mask, generates the caption from the queries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from components.models.blip2 import QFormerPretrainModel
from components.models.llava import IGNORE_INDEX
from components.training.matching import MAX_LOGIT_SCALE, itc_loss, sample_hard_negatives

__all__ = ["itc_loss", "max_over_queries_similarity", "qformer_losses", "sample_hard_negatives"]


def max_over_queries_similarity(query_emb: Tensor, text_emb: Tensor) -> Tensor:
    """query_emb (B, Q, E), text_emb (B', E) -> (B, B'): for each image and text, the best query's cosine."""
    return torch.einsum("bqe,te->bqt", query_emb, text_emb).amax(dim=1)


def qformer_losses(model: QFormerPretrainModel, pixel_values: Tensor, text_ids: Tensor, text_mask: Tensor) -> dict[str, Tensor]:
    """{"itc", "itm", "itg", "loss" (their sum), "itm_acc"} for a batch of matching pairs."""
    image = model.image_features(pixel_values)  # (B, 1 + N, Dv)
    B, Q = len(image), model.qformer.cfg.num_queries
    scale = model.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    # ITC: unimodal mask (the streams run separately)
    similarity = max_over_queries_similarity(model.query_embeddings(image), model.text_embedding(text_ids, text_mask))
    itc = itc_loss(similarity, scale)

    # ITM: bidirectional mask over positives, (image, hard text) and (hard image, text)
    with torch.no_grad():
        neg_text, neg_image = sample_hard_negatives(similarity.detach())
    pair_images = torch.cat([image, image, image[neg_image]])
    pair_ids = torch.cat([text_ids, text_ids[neg_text], text_ids])
    pair_mask = torch.cat([text_mask, text_mask[neg_text], text_mask])
    hidden = model.joint(pair_images, pair_ids, pair_mask, "bidirectional")[:, :Q]  # (3B, Q, D)
    itm_logits = model.itm_head(hidden).mean(dim=1)  # (3B, 2): averaged over queries
    itm_labels = torch.cat([torch.ones(B), torch.zeros(2 * B)]).long().to(itm_logits.device)
    itm = F.cross_entropy(itm_logits, itm_labels)

    # ITG: multimodal causal mask; a BOS token starts the caption ([DEC] in BLIP-2)
    decoder_ids = torch.cat([torch.full_like(text_ids[:, :1], model.bos_id), text_ids[:, :-1]], dim=1)
    decoder_mask = torch.cat([torch.ones_like(text_mask[:, :1]), text_mask[:, :-1]], dim=1)
    text_hidden = model.joint(image, decoder_ids, decoder_mask, "multimodal_causal")[:, Q:]  # (B, T, D)
    targets = text_ids.masked_fill(text_mask == 0, IGNORE_INDEX)  # position t predicts caption token t
    itg = F.cross_entropy(model.lm_head(text_hidden).transpose(1, 2), targets, ignore_index=IGNORE_INDEX)

    return {
        "itc": itc, "itm": itm, "itg": itg, "loss": itc + itm + itg,
        "itm_acc": (itm_logits.argmax(-1) == itm_labels).float().mean().detach(),
    }
