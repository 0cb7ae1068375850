"""OFA: one encoder-decoder, one vocabulary, every task an instruction (Wang et al. 2022).

The vocabulary is the dataset tokenizer's (BPE text and OFA's `<bin_NNN>` location tokens) followed by
the image codes of the vector-quantised image tokenizer (`image_tokenizer`): code c is token
`codes_offset + c`. One embedding table serves the encoder, the decoder and the output layer (tied).

The encoder reads the image's patch tokens (`vision`, projected; OFA's ResNet features) and then the
instruction's tokens, each with a type embedding (text or image) and the text with learned positions;
`<image>` markers are dropped from the text, as the image is read in front. The decoder is causal
self-attention, cross-attention to the encoder's output and a feed-forward layer in each block.
Image infilling: the middle quarter of the image is masked in the input and the answer is the codes of
the whole image's middle, as OFA's vision-only pretraining task (`infill_batch`).

`generate` takes the prompts and images as LlavaModel's does, so the same evaluation and serving
answer with it; it decodes greedily, recomputing the decoder over the prefix at each step (answers are
a few tokens; the encoder runs once).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.blocks import MLP, Attention, CrossAttention, TransformerBlock, make_norm
from components.models.config import OfaConfig, VisionConfig, VqConfig
from components.models.language_model import position_ids_from_mask
from components.models.llava import IGNORE_INDEX
from components.models.vision import VisionTransformer
from components.models.vq import VqTokenizer

TEXT, IMAGE = 0, 1


def middle(size: int) -> slice:
    """The middle half of a side of `size` (pixels or code cells): what infilling masks and answers."""
    return slice(size // 4, size - size // 4)


def middle_codes(image_size: int, vq: VqConfig | None) -> int:
    """How many image codes the middle of an image is (infilling's answer, eos aside); 0 without an image tokenizer."""
    if vq is None:
        return 0
    side = len(range(image_size // vq.downsample)[middle(image_size // vq.downsample)])
    return side * side


class DecoderBlock(nn.Module):
    """Pre-norm: x + causal self-attention, x + cross-attention to the encoder's output, x + MLP."""

    def __init__(self, cfg: OfaConfig) -> None:
        super().__init__()
        self.attn_norm = make_norm("layernorm", cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads, rotary=False)
        self.cross_norm = make_norm("layernorm", cfg.dim)
        self.cross = CrossAttention(cfg.dim, cfg.heads, bias=True)
        self.mlp_norm = make_norm("layernorm", cfg.dim)
        self.mlp = MLP(cfg.dim, cfg.mlp_hidden, "gelu")

    def forward(self, x: Tensor, causal: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        attn_out, _ = self.attn(self.attn_norm(x), causal)
        x = x + attn_out
        x = x + self.cross(self.cross_norm(x), memory, memory_mask)
        return x + self.mlp(self.mlp_norm(x))


class OfaModel(nn.Module):
    def __init__(self, cfg: OfaConfig, vision: VisionConfig, vq: VqConfig | None, text_vocab: int, image_id: int, pad_id: int, bos_id: int, eos_id: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_id, self.pad_id, self.bos_id, self.eos_id = image_id, pad_id, bos_id, eos_id
        self.codes_offset = text_vocab
        self.vision = VisionTransformer(vision)
        self.image_projection = nn.Linear(vision.dim, cfg.dim)
        self.image_tokenizer = VqTokenizer(vq) if vq is not None else None
        self.token_embed = nn.Embedding(text_vocab + (vq.codebook_size if vq is not None else 0), cfg.dim)
        self.encoder_positions = nn.Embedding(cfg.max_positions, cfg.dim)
        self.decoder_positions = nn.Embedding(cfg.max_positions, cfg.dim)
        self.type_embed = nn.Embedding(2, cfg.dim)
        self.encoder = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_hidden, "gelu", "layernorm", rotary=False) for _ in range(cfg.encoder_depth)
        )
        self.encoder_norm = make_norm("layernorm", cfg.dim)
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_depth))
        self.decoder_norm = make_norm("layernorm", cfg.dim)

    @property
    def text_vocab(self) -> int:
        return self.codes_offset

    def encode(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor) -> tuple[Tensor, Tensor]:
        """(memory (B, N + T, dim), key mask (B, N + T)): the image's N patch tokens, then the instruction's."""
        if input_ids.shape[1] > self.cfg.max_positions:
            raise ValueError(f"an instruction of {input_ids.shape[1]} tokens is longer than model.ofa.max_positions={self.cfg.max_positions}")
        text_mask = attention_mask.bool() & (input_ids != self.image_id)
        text = self.token_embed(input_ids) + self.encoder_positions(position_ids_from_mask(text_mask.long())) + self.type_embed.weight[TEXT]
        image = self.image_projection(self.vision(pixel_values)) + self.type_embed.weight[IMAGE]  # (B, N, dim)
        image_mask = has_image.bool()[:, None].expand(-1, image.shape[1])
        x = torch.cat([image, text], dim=1)
        mask = torch.cat([image_mask, text_mask], dim=1)
        keys = mask[:, None, None, :]
        for block in self.encoder:
            x, _ = block(x, keys)
        return self.encoder_norm(x), mask

    def decode(self, memory: Tensor, memory_mask: Tensor, decoder_ids: Tensor) -> Tensor:
        """Logits over the whole vocabulary (B, T, V) for decoder inputs (B, T), bos first."""
        T = decoder_ids.shape[1]
        if T > self.cfg.max_positions:
            raise ValueError(f"an answer of {T} tokens is longer than model.ofa.max_positions={self.cfg.max_positions}")
        x = self.token_embed(decoder_ids) + self.decoder_positions(torch.arange(T, device=decoder_ids.device))
        causal = torch.ones(T, T, dtype=torch.bool, device=decoder_ids.device).tril()
        keys = memory_mask[:, None, None, :]
        for block in self.decoder:
            x = block(x, causal, memory, keys)
        return self.decoder_norm(x) @ self.token_embed.weight.t()

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Teacher-forced loss: the decoder reads [bos] + labels[:-1] (IGNORE_INDEX read as pad) and predicts labels."""
        memory, memory_mask = self.encode(input_ids, attention_mask, pixel_values, has_image)
        shifted = torch.cat([torch.full_like(labels[:, :1], self.bos_id), labels[:, :-1]], dim=1)
        shifted = shifted.masked_fill(shifted == IGNORE_INDEX, self.pad_id)
        logits = self.decode(memory, memory_mask, shifted)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return {"loss": loss, "logits": logits}

    def infill_batch(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """OFA's image infilling: (the images with their middle masked, the middle's code tokens (B, K), without eos)."""
        if self.image_tokenizer is None:
            raise ValueError("image infilling answers with image codes: the model needs model.vq (an image tokenizer)")
        codes = self.image_tokenizer.encode(pixel_values)  # (B, h, w)
        h, w = codes.shape[1:]
        inside = middle(pixel_values.shape[-1])
        masked = pixel_values.clone()
        masked[:, :, inside, inside] = pixel_values.amin()  # the darkest pixel: the Shapes background
        return masked, codes[:, middle(h), middle(w)].flatten(1) + self.codes_offset

    @torch.no_grad()
    def generate(
        self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor, max_new_tokens: int,
        eos_token_id: int, use_cache: bool = True, image_sizes: Tensor | None = None, codes: bool = False,
    ) -> list[list[int]]:
        """Greedy answers (without eos) to left- or right-padded prompts: text tokens only, or with `codes`
        image codes only (returned as code numbers, 0..codebook_size-1)."""
        del use_cache, image_sizes  # the decoder is recomputed over the prefix; images are square
        memory, memory_mask = self.encode(input_ids, attention_mask, pixel_values, has_image)
        B = input_ids.shape[0]
        ids = torch.full((B, 1), self.bos_id, dtype=torch.long, device=input_ids.device)
        done = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
        outputs: list[list[int]] = [[] for _ in range(B)]
        allowed = torch.zeros(self.token_embed.num_embeddings, dtype=torch.bool, device=input_ids.device)
        if codes:
            allowed[self.codes_offset :] = True
        else:
            allowed[: self.codes_offset] = True
        for _ in range(min(max_new_tokens, self.cfg.max_positions - 1)):
            logits = self.decode(memory, memory_mask, ids)[:, -1].masked_fill(~allowed, float("-inf"))
            token = logits.argmax(-1)
            for row in range(B):
                if not done[row] and (codes or token[row].item() != eos_token_id):
                    outputs[row].append(token[row].item() - (self.codes_offset if codes else 0))
            done |= token == eos_token_id
            if bool(done.all()):
                break
            ids = torch.cat([ids, token[:, None]], dim=1)
        return outputs
