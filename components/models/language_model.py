"""LLaMA-style causal decoder that takes embeddings, so images can be spliced in."""

from __future__ import annotations

import torch
from collections.abc import Callable

from torch import Tensor, nn

from components.models.blocks import KVCache, RMSNorm, RotaryEmbedding, TransformerBlock
from components.models.config import LanguageModelConfig


BeforeBlock = Callable[[int, Tensor], Tensor]
"""(block index, hidden states (B, T, D)) -> hidden states: a layer run before an LM block."""


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions that count real tokens only: (B, S) -> (B, S), left or right padding."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def positions_sharing_image(attention_mask: Tensor, image_mask: Tensor) -> Tensor:
    """As position_ids_from_mask, but a run of image tokens shares one position (CogVLM):
    the image does not push the text after it hundreds of positions away."""
    repeat = image_mask & torch.nn.functional.pad(image_mask, (1, 0))[:, :-1]  # an image token after another
    return position_ids_from_mask(attention_mask.bool() & ~repeat)


def causal_padding_mask(attention_mask: Tensor, num_new: int) -> Tensor:
    """Bool mask (B, 1, T, S) for the last T=num_new queries over S keys; True = may attend.

    Query i sits at absolute position past + i and sees real keys 0..past + i.
    It always sees itself, so a padding query (left padding) has one key to
    attend to instead of a fully masked row, which would make softmax NaN.
    """
    S = attention_mask.shape[1]
    past = S - num_new
    device = attention_mask.device
    q_pos = torch.arange(past, S, device=device)[:, None]  # (T, 1)
    k_pos = torch.arange(S, device=device)[None, :]  # (1, S)
    causal = k_pos <= q_pos  # (T, S)
    itself = k_pos == q_pos  # (T, S)
    real_keys = attention_mask.bool()[:, None, :]  # (B, 1, S)
    return ((causal & real_keys) | itself)[:, None]  # (B, 1, T, S)


class DecoderLM(nn.Module):
    def __init__(self, cfg: LanguageModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.embed_tokens = nn.Embedding(vocab_size, cfg.dim)
        self.rotary = RotaryEmbedding(cfg.dim // cfg.heads, cfg.rope_theta)
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_hidden, "swiglu", "rmsnorm", rotary=True)
            for _ in range(cfg.depth)
        )
        self.norm = RMSNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, vocab_size, bias=False)

    def embed(self, input_ids: Tensor) -> Tensor:
        return self.embed_tokens(input_ids)  # (B, T) -> (B, T, D)

    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        past_key_values: list[KVCache] | None = None,
        use_cache: bool = False,
        experts: nn.ModuleList | None = None,
        image_mask: Tensor | None = None,
        before_block: BeforeBlock | None = None,
    ) -> tuple[Tensor, list[KVCache] | None]:
        """inputs_embeds (B, T, D); attention_mask (B, S = past + T), 1 = real token;
        position_ids (B, T). Returns logits (B, T, V) and, with use_cache, the
        per-block (k, v) covering all S positions. `experts` (one VisualExpert per
        block, CogVLM) take over the tokens `image_mask` (B, T) marks. `before_block(i, x)`
        runs on the new tokens' hidden states before block i (Flamingo's gated cross-attention)."""
        hidden, cache = self.hidden_states(
            inputs_embeds, attention_mask, position_ids, past_key_values, use_cache, experts, image_mask, before_block
        )
        return self.lm_head(hidden), cache

    def hidden_states(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        past_key_values: list[KVCache] | None = None,
        use_cache: bool = False,
        experts: nn.ModuleList | None = None,
        image_mask: Tensor | None = None,
        before_block: BeforeBlock | None = None,
    ) -> tuple[Tensor, list[KVCache] | None]:
        """As forward, but the final-normed hidden states (B, T, D) instead of logits: training
        applies lm_head only where a token is predicted."""
        B, T, _ = inputs_embeds.shape
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        S = past + T
        if attention_mask.shape != (B, S):
            raise ValueError(
                f"DecoderLM: attention_mask must cover past + new tokens, shape ({B}, {S}); "
                f"got {tuple(attention_mask.shape)}"
            )
        if S > self.cfg.max_seq_len:
            raise ValueError(f"DecoderLM: sequence length {S} exceeds max_seq_len={self.cfg.max_seq_len}")
        if past_key_values is not None and len(past_key_values) != len(self.blocks):
            raise ValueError(
                f"DecoderLM: past_key_values has {len(past_key_values)} entries, "
                f"expected one per block ({len(self.blocks)})"
            )

        mask = causal_padding_mask(attention_mask, T)  # (B, 1, T, S)
        cos_sin = self.rotary(position_ids)  # each (B, 1, T, head_dim)
        x = inputs_embeds
        present: list[KVCache] = []
        for i, block in enumerate(self.blocks):
            cache = None if past_key_values is None else past_key_values[i]
            if before_block is not None:
                x = before_block(i, x)
            if experts is None:
                x, kv = block(x, attn_mask=mask, cos_sin=cos_sin, kv_cache=cache)
            else:
                x, kv = experts[i](block, x, mask, cos_sin, cache, image_mask)
            present.append(kv)
        return self.norm(x), (present if use_cache else None)  # (B, T, D)
