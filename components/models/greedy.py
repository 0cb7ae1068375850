"""Greedy decoding over a decoder LM, shared by the families that feed it embeddings.

The family's `run` makes one LM pass over the last T of S tokens (the prompt, or
the newly generated token with the KV cache, or everything again without it) and
adds whatever it needs per token (CogVLM's image mask, Flamingo's media mask).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from components.models.blocks import KVCache

Cache = list[KVCache] | None
DecodeRun = Callable[[Tensor, Tensor, Tensor, Cache], tuple[Tensor, Cache]]
"""(embeds (B, T, D), attention_mask (B, S), position_ids (B, T), cache) -> (logits (B, T, V), cache)."""


def greedy_decode(
    run: DecodeRun,
    embed: Callable[[Tensor], Tensor],
    embeds: Tensor,
    attention_mask: Tensor,
    position_ids: Tensor,
    max_new_tokens: int,
    eos_token_id: int,
    use_cache: bool = True,
) -> list[list[int]]:
    """New ids per sample (eos excluded) after LEFT-padded prompt embeddings (B, L, D)."""
    B = embeds.shape[0]
    generated: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool, device=embeds.device)
    if max_new_tokens <= 0:
        return generated
    mask, positions = attention_mask, position_ids
    logits, cache = run(embeds, mask, positions, None)  # prompt pass
    for step in range(max_new_tokens):
        next_ids = logits[:, -1].argmax(-1)  # (B,)
        done_now = done | (next_ids == eos_token_id)
        for b in (~done_now).nonzero().flatten().tolist():
            generated[b].append(int(next_ids[b]))
        done = done_now
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        # Finished samples keep decoding (their outputs are discarded) so the batch stays aligned.
        new_embeds = embed(next_ids[:, None])  # (B, 1, D)
        new_positions = positions[:, -1:] + 1  # (B, 1)
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)  # (B, S + 1)
        positions = torch.cat([positions, new_positions], dim=1)
        if use_cache:
            logits, cache = run(new_embeds, mask, new_positions, cache)
        else:
            embeds = torch.cat([embeds, new_embeds], dim=1)  # (B, S + 1, D)
            logits, _ = run(embeds, mask, positions, None)
    return generated


def extend_right(per_token: Tensor, length: int, fill: Tensor | float | bool) -> Tensor:
    """(B, L) prompt values -> (B, length): generated tokens, appended on the right, get `fill`."""
    extra = length - per_token.shape[1]
    if extra <= 0:
        return per_token[:, :length]
    pad = torch.as_tensor(fill, dtype=per_token.dtype, device=per_token.device).expand(per_token.shape[0], extra)
    return torch.cat([per_token, pad], dim=1)
