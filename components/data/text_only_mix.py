"""Text-only sequences mixed into multimodal training (VILA's re-blended text-only instruction data).

A stage that trains the LM on images alone erodes what it did with text; VILA mixes
text-only data into its SFT to repair that. `TextOnlyItems` draws a fixed, seeded
number of sequences from a text corpus and gives each the fields a conversation item
has (a blank image, has_image false), so the two batch together.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from components.data.llava_json import TextCorpusDataset
from components.data.tokenizer import TextTokenizer


def text_only_count(conversations: int, fraction: float) -> int:
    """How many text-only items make `fraction` of a mix with `conversations` others."""
    if not 0 <= fraction < 1:
        raise ValueError(f"text-only fraction {fraction} must be in [0, 1)")
    return round(conversations * fraction / (1 - fraction))


class TextOnlyItems(Dataset):
    """`count` items of `corpus`, each with a blank (3, S, S) image and has_image false: a draw without
    repeats (with `seed`); a corpus smaller than `count` is taken whole as often as it fits, then drawn."""

    def __init__(self, corpus: TextCorpusDataset, count: int, image_size: int, tokenizer: TextTokenizer, seed: int = 0) -> None:
        if count < 1 or not len(corpus):
            raise ValueError(f"TextOnlyItems: cannot draw {count} items from a corpus of {len(corpus)}")
        rng = np.random.default_rng([seed, count])
        self.corpus, self.tokenizer = corpus, tokenizer
        whole, rest = divmod(count, len(corpus))
        self.indices = list(range(len(corpus))) * whole + rng.choice(len(corpus), size=rest, replace=False).tolist()
        self.blank = torch.zeros(3, image_size, image_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.corpus[self.indices[index]]
        return item | {"pixel_values": self.blank, "has_image": torch.tensor(False)}

    def length_estimates(self) -> list[int]:
        """Characters of text, as the conversations estimate theirs, so the two group by length together."""
        return [len(self.tokenizer.decode(self.corpus.sequences[i])) for i in self.indices]
