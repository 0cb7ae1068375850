"""Uni-Perceiver: one shared encoder reads every modality; every task is a similarity to targets.

Modality tokenizers turn text (BPE ids), images (patches) and videos (each frame's
patches) into token sequences, each token with a modality-type embedding and a
position embedding, and video tokens also a temporal (frame) embedding. A learned
<SPE> token starts every sequence; its output, projected and normalised, is the
sequence's representation. Inputs and targets go through the same encoder, so a
task is a softmax over candidate targets by cosine similarity (with a learned
temperature): an image against captions (retrieval), a masked word's position
against every word of the vocabulary (masked language modelling), the position
after a caption's prefix, reading its image, against every word (captioning).
`encode_image`, `encode_text` and `scale` are ClipModel's, so the contrastive
evaluation and serving take this model as they take a CLIP one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.blocks import TransformerBlock
from components.models.clip import MAX_LOGIT_SCALE
from components.models.config import UniPerceiverConfig, VisionConfig
from components.models.vision import patch_stem

TEXT, IMAGE, VIDEO = 0, 1, 2
"""Modality types, each with its own type embedding."""


class UniPerceiver(nn.Module):
    def __init__(self, cfg: UniPerceiverConfig, vision: VisionConfig, vocab_size: int, pad_id: int, embed_dim: int) -> None:
        super().__init__()
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"UniPerceiver: pad_id={pad_id} must be in [0, vocab_size={vocab_size})")
        self.cfg, self.vision_cfg, self.pad_id = cfg, vision, pad_id
        dim = cfg.dim
        self.token_embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.text_positions = nn.Embedding(cfg.max_text_len, dim)
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.patch_embed = patch_stem(vision.model_copy(update={"dim": dim}))
        self.patch_positions = nn.Parameter(torch.randn(vision.num_patches, dim) * 0.02)
        self.frame_positions = nn.Parameter(torch.randn(cfg.max_frames, dim) * 0.02)
        self.type_embed = nn.Embedding(3, dim)
        self.spe = nn.Parameter(torch.randn(dim) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, cfg.heads, cfg.mlp_hidden, "gelu", "layernorm", rotary=False) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.projection = nn.Linear(dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("pixel_mean", torch.tensor(vision.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(vision.pixel_std).view(1, 3, 1, 1), persistent=False)

    # --- modality tokenizers: (tokens (B, L, D), mask (B, L)) ---

    def image_tokens(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, S, S) -> N patch tokens each."""
        size = self.vision_cfg.image_size
        if pixel_values.shape[1:] != (3, size, size):
            raise ValueError(f"UniPerceiver expects images (B, 3, {size}, {size}); got {tuple(pixel_values.shape)}")
        patches = self.patch_embed((pixel_values - self.pixel_mean) / self.pixel_std).flatten(2).transpose(1, 2)  # (B, N, D)
        tokens = patches + self.patch_positions + self.type_embed.weight[IMAGE]
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)

    def video_tokens(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """(B, F, 3, S, S) -> F * N tokens: each frame's patches, with the frame's temporal embedding."""
        B, count = frames.shape[:2]
        if count > self.cfg.max_frames:
            raise ValueError(f"UniPerceiver: {count} frames, but max_frames is {self.cfg.max_frames}")
        patches, _ = self.image_tokens(frames.flatten(0, 1))  # (B * F, N, D), image type
        patches = patches - self.type_embed.weight[IMAGE] + self.type_embed.weight[VIDEO]
        tokens = (patches.view(B, count, -1, patches.shape[-1]) + self.frame_positions[:count, None]).flatten(1, 2)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)

    def text_tokens(self, ids: Tensor, mask: Tensor, masked: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T) ids; `masked` (B, T) bool: positions whose token is replaced by the mask embedding."""
        if ids.shape[1] > self.cfg.max_text_len:
            raise ValueError(f"UniPerceiver: text of {ids.shape[1]} tokens exceeds max_text_len={self.cfg.max_text_len}")
        embedded = self.token_embed(ids)
        if masked is not None:
            embedded = torch.where(masked[..., None], self.mask_token.to(embedded.dtype), embedded)
        tokens = embedded + self.text_positions(torch.arange(ids.shape[1], device=ids.device)) + self.type_embed.weight[TEXT]
        return tokens, mask

    # --- the shared encoder ---

    def encode(self, tokens: Tensor, mask: Tensor, causal_from: int | None = None) -> Tensor:
        """<SPE> + tokens (B, L, D) -> normed outputs (B, 1 + L, D). Every token sees every real token; with
        `causal_from`, the tokens from that index on (a caption after its image) see only those before them."""
        B, L, _ = tokens.shape
        x = torch.cat([self.spe.expand(B, 1, -1).to(tokens.dtype), tokens], dim=1)
        keys = torch.cat([mask.new_ones(B, 1), mask], dim=1).bool()  # (B, 1 + L)
        allowed = keys[:, None, None, :].expand(B, 1, 1 + L, 1 + L)
        if causal_from is not None:
            start = 1 + causal_from  # <SPE> and the context tokens read only one another; the text reads them and itself so far
            index = torch.arange(1 + L, device=x.device)
            allowed = allowed & ((index[None, :] <= index[:, None]) | (index[None, :] < start))
        allowed = allowed | torch.eye(1 + L, dtype=torch.bool, device=x.device)  # never a fully masked row
        for block in self.blocks:
            x, _ = block(x, attn_mask=allowed)
        return self.norm(x)

    def embed(self, outputs: Tensor) -> Tensor:
        """Output features (..., D) -> unit-norm representations (..., E)."""
        return F.normalize(self.projection(outputs), dim=-1)

    def encode_image(self, pixel_values: Tensor) -> Tensor:
        return self.embed(self.encode(*self.image_tokens(pixel_values))[:, 0])

    def encode_video(self, frames: Tensor) -> Tensor:
        return self.embed(self.encode(*self.video_tokens(frames))[:, 0])

    def encode_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.embed(self.encode(*self.text_tokens(ids, mask))[:, 0])

    def word_targets(self) -> Tensor:
        """(V, E): every vocabulary word as a target, a one-word text through the shared encoder."""
        words = torch.arange(self.token_embed.num_embeddings, device=self.spe.device)[:, None]
        return self.embed(self.encode(*self.text_tokens(words, torch.ones_like(words)))[:, 1])

    @property
    def max_text_len(self) -> int:
        return self.cfg.max_text_len

    def scale(self) -> Tensor:
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, pixel_values: Tensor, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.encode_image(pixel_values), self.encode_text(ids, mask), self.scale()
