"""Captions from BLIP's image-grounded decoder, and its image-text matching score: CapFilt's two halves.

The captioner writes a caption after [DEC], token by token: greedily, or by
nucleus sampling (BLIP samples with top-p 0.9, for more diverse synthetic
captions than beam search gives). The filter is the image-grounded encoder's
ITM head: the probability that an image and a text match.
"""

from __future__ import annotations

import torch
from torch import Tensor

from components.models.blip import BlipModel


def _next_tokens(logits: Tensor, top_p: float | None, generator: torch.Generator | None) -> Tensor:
    """(B, V) logits -> (B,) ids: the argmax, or a draw from the smallest set of tokens whose
    probability reaches top_p."""
    if top_p is None:
        return logits.argmax(dim=-1)
    probs = logits.float().softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # the mass ranked above each token
    sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)  # the top token always stays
    choice = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1, generator=generator)  # (B, 1)
    return order.gather(1, choice).squeeze(1)


@torch.no_grad()
def write_captions(
    model: BlipModel, pixel_values: Tensor, eos_id: int, pad_id: int, max_tokens: int,
    top_p: float | None = None, generator: torch.Generator | None = None,
) -> list[list[int]]:
    """One caption's ids per image (eos excluded), at most max_tokens each."""
    return captions_from_features(model, model.image_features(pixel_values), eos_id, pad_id, max_tokens, top_p, generator)


@torch.no_grad()
def captions_from_features(
    model: BlipModel, features: Tensor, eos_id: int, pad_id: int, max_tokens: int,
    top_p: float | None = None, generator: torch.Generator | None = None,
) -> list[list[int]]:
    """write_captions for images whose tower features (B, 1 + N, Dv) are already computed."""
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p={top_p} must be in (0, 1], or None for greedy captions")
    if not 1 <= max_tokens <= model.max_text_len:
        raise ValueError(f"max_tokens={max_tokens} must be in 1..{model.max_text_len} (the decoder's max_text_len)")
    B = len(features)
    ids = torch.empty(B, 0, dtype=torch.long, device=features.device)
    done = torch.zeros(B, dtype=torch.bool, device=features.device)
    for _ in range(max_tokens):
        # the decoder's output after [DEC] and every id so far predicts the next id
        hidden = model.grounded(features, ids, torch.ones_like(ids), "decoder")[:, -1]  # (B, D)
        token = _next_tokens(model.lm_head(hidden), top_p, generator)
        token = token.masked_fill(done, pad_id)
        ids = torch.cat([ids, token[:, None]], dim=1)
        done |= token == eos_id
        if bool(done.all()):
            break
    return [row[: _end(row, eos_id, pad_id)] for row in ids.tolist()]


def _end(row: list[int], eos_id: int, pad_id: int) -> int:
    for index, token in enumerate(row):
        if token in (eos_id, pad_id):
            return index
    return len(row)


@torch.no_grad()
def match_probability(model: BlipModel, pixel_values: Tensor, text_ids: Tensor, text_mask: Tensor) -> Tensor:
    """(B,) the ITM head's probability that image b and text b match."""
    return model.match_logits(model.image_features(pixel_values), text_ids, text_mask).softmax(dim=-1)[:, 1]
