"""Normalised embeddings of many texts or images from a contrastive model, in batches.

Shared by zero-shot classification and retrieval, which differ only in what
they compare. Texts are cut to the text tower's max_len (keeping the end
token), as the contrastive stage's data cuts captions.
"""

from __future__ import annotations

from pathlib import Path

import torch

from components.data.llava_json import load_image
from components.data.tokenizer import TextTokenizer


@torch.no_grad()
def text_embeddings(model, tokenizer: TextTokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """(len(texts), E), each row of unit norm; `model.max_text_len` bounds a text, eos included."""
    max_len = model.max_text_len
    encoded = [(tokenizer.encode(text)[: max_len - 1]) + [tokenizer.eos_id] for text in texts]
    chunks = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        chunks.append(model.encode_text(ids, mask))
    return torch.cat(chunks)


@torch.no_grad()
def image_embeddings(model, images: list[Path], image_size: int, batch_size: int = 64) -> torch.Tensor:
    """(len(images), E), each row of unit norm."""
    chunks = []
    for start in range(0, len(images), batch_size):
        pixels = torch.stack([load_image(path, image_size) for path in images[start : start + batch_size]])
        chunks.append(model.encode_image(pixels))
    return torch.cat(chunks)
