"""Training objectives' losses, each testable alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.models.llava import IGNORE_INDEX, next_token_loss

__all__ = ["IGNORE_INDEX", "clip_loss", "next_token_loss", "region_word_loss", "unicl_loss"]


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



def unicl_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor, labels: torch.Tensor, negative_emb: torch.Tensor | None = None
) -> torch.Tensor:
    """UniCL's bidirectional loss (Florence): every pair of the batch that shares a label is a
    positive for every other with that label; only pairs of different labels are negatives.

    image_emb, text_emb: (N, E), L2-normalised, the i-th image and text of label labels[i] (N,).
    Each image's loss is the mean over its positive texts of -log softmax over all texts, and each
    text's alike over the images. With N distinct labels this is CLIP's loss exactly.
    negative_emb (M, E), optional: texts of no label (hard negatives), scored by every image.
    """
    logits = scale * image_emb @ text_emb.t()  # (N, N)
    positive = labels[:, None] == labels[None, :]  # (N, N), the diagonal always True
    text_to_image = -(logits.t().log_softmax(dim=1) * positive).sum(1) / positive.sum(1)
    if negative_emb is not None:
        logits = torch.cat([logits, scale * image_emb @ negative_emb.t()], dim=1)  # (N, N + M)
        positive = torch.cat([positive, positive.new_zeros(len(labels), len(negative_emb))], dim=1)
    image_to_text = -(logits.log_softmax(dim=1) * positive).sum(1) / positive.sum(1)
    return (image_to_text.mean() + text_to_image.mean()) / 2


def region_word_loss(token_emb: torch.Tensor, word_emb: torch.Tensor, positive: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Region-word alignment (as GLIP aligns regions with the words that name them): each patch
    token of a described region is scored against every word of the batch's region phrases, and
    each word of its own phrase must beat all the words that are not in it.

    token_emb (K, E) and word_emb (W, E), L2-normalised; positive (K, W) bool, at least one True
    per row; scale: the (clamped) logit scale. Returns the mean over (token, own word) pairs of
    -log(exp(s_pos) / (exp(s_pos) + sum over the token's negative words of exp(s_neg))).

    One softmax per own word, not one over the whole phrase, keeps the attributes apart: 'circle'
    competes with the other shapes and colours, not with 'small' and 'green' of the same phrase.
    """
    logits = scale * token_emb @ word_emb.t()  # (K, W), |logits| <= scale <= 100
    # -1e4, not -inf: a token whose phrase holds every word has no negatives, and an all -inf
    # logsumexp would give NaN gradients; its loss is then ~0, as it should be
    negatives = torch.logsumexp(logits.masked_fill(positive, -1e4), dim=1, keepdim=True)  # (K, 1)
    losses = torch.logaddexp(logits, negatives) - logits  # (K, W): -log p(own word against the negatives)
    return losses[positive].mean()
