"""Interleaved image-text sequences (Flamingo's M3W-style training data) from single-image samples.

Sequence i starts with sample i and adds up to `max_images - 1` partners drawn by a
seeded generator: [bos] chunk_1 chunk_2 ..., each chunk a sample's own encoding
(its `<image>` where it stands, its caption or its turns, the loss on what the
sample's labels mark). Sequences are a pure function of (index, seed), so a stage
sees the same data on every run. Chunks that would pass max_len are left out: an
image is never cut from its text.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class InterleavedDataset(Dataset):
    """Items: pixel_values (M, 3, S, S) in `<image>` order, has_image, input_ids, labels."""

    def __init__(self, samples: Dataset, max_images: int, max_len: int, seed: int = 0) -> None:
        """`samples`: a dataset whose items are one encoded conversation each (LlavaJsonDataset, or
        several as one), starting with bos."""
        if max_images < 1:
            raise ValueError(f"InterleavedDataset: max_images={max_images} must be at least 1")
        self.samples, self.max_images, self.max_len, self.seed = samples, max_images, max_len, seed

    def __len__(self) -> int:
        return len(self.samples)

    def members(self, index: int) -> list[int]:
        """The samples of sequence `index`, in order: itself, then its drawn partners."""
        rng = np.random.default_rng([self.seed, index])
        count = int(rng.integers(1, self.max_images + 1))
        return [index] + [int(i) for i in rng.integers(0, len(self.samples), size=count - 1)]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids, labels, pixels = [], [], []
        length = 1  # bos
        for position, member in enumerate(self.members(index)):
            item = self.samples[member]
            chunk_ids, chunk_labels = item["input_ids"][1:], item["labels"][1:]  # each sample's bos dropped
            if position and length + len(chunk_ids) > self.max_len:
                break
            length += len(chunk_ids)
            ids.append(chunk_ids)
            labels.append(chunk_labels)
            if bool(item["has_image"]):
                pixels.append(item["pixel_values"])
        first = self.samples[index]
        bos, ignore = first["input_ids"][:1], first["labels"][:1]
        return {
            "pixel_values": torch.stack(pixels) if pixels else first["pixel_values"][None],
            "has_image": torch.tensor(bool(pixels)),
            "input_ids": torch.cat([bos, *ids]),
            "labels": torch.cat([ignore, *labels]),
        }
