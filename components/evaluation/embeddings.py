"""Normalised embeddings of many texts or images from a contrastive model, in batches.

Shared by zero-shot classification and retrieval, which differ only in what
they compare. Texts are cut to the text tower's max_len (keeping the end
token), as the contrastive stage's data cuts captions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from components.data.llava_json import load_image
from components.data.tokenizer import TextTokenizer


def encode_texts(tokenizer: TextTokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ids and mask (len(texts), longest), right-padded: each text's ids cut to max_len - 1, then eos."""
    encoded = [tokenizer.encode(text)[: max_len - 1] + [tokenizer.eos_id] for text in texts]
    ids = torch.full((len(encoded), max(map(len, encoded))), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask


def image_batches(images: list[Path], image_size: int, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """The images' pixels, (<= batch_size, 3, S, S) at a time."""
    for start in range(0, len(images), batch_size):
        yield torch.stack([load_image(path, image_size) for path in images[start : start + batch_size]])


@torch.no_grad()
def text_embeddings(model, tokenizer: TextTokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """(len(texts), E), each row of unit norm; `model.max_text_len` bounds a text, eos included."""
    chunks = [model.encode_text(*encode_texts(tokenizer, texts[start : start + batch_size], model.max_text_len))
              for start in range(0, len(texts), batch_size)]
    return torch.cat(chunks)


@torch.no_grad()
def image_embeddings(model, images: list[Path], image_size: int, batch_size: int = 64) -> torch.Tensor:
    """(len(images), E), each row of unit norm."""
    return torch.cat([model.encode_image(pixels) for pixels in image_batches(images, image_size, batch_size)])
