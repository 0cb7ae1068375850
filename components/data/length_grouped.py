"""Batches of samples of similar length (LLaVA's group_by_length / HF's LengthGroupedSampler).

A padded batch costs what its longest sample costs. Conversations of the Shapes world
run from 3 to 5 turns, so a random batch of 32 is padded to about 1.6 times its mean
length, and attention pays that factor squared. Drawing a random "megabatch" of many
batches, sorting it by length and cutting it into batches keeps each batch's lengths
close while the order in which samples are seen stays random.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices; a fresh random grouping on each pass (epoch).

    lengths: a cost estimate per sample (any unit; only the order matters).
    megabatch_batches: how many batches are sorted together; more means closer lengths
    within a batch and less randomness in which samples share one.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool = True,
        megabatch_batches: int = 50,
    ) -> None:
        if batch_size < 1 or megabatch_batches < 1:
            raise ValueError(f"batch_size={batch_size} and megabatch_batches={megabatch_batches} must be >= 1")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size, self.generator, self.drop_last = batch_size, generator, drop_last
        self.megabatch = batch_size * megabatch_batches

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.megabatch)  # a megabatch is a whole number of batches
        return full * (self.megabatch // self.batch_size) + self._batches_in(rest)

    def _batches_in(self, count: int) -> int:
        whole, part = divmod(count, self.batch_size)
        return whole + (1 if part and not self.drop_last else 0)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        batches: list[torch.Tensor] = []
        for start in range(0, len(order), self.megabatch):
            mega = order[start : start + self.megabatch]
            mega = mega[torch.argsort(self.lengths[mega], descending=True, stable=True)]
            for b in range(0, len(mega), self.batch_size):
                batch = mega[b : b + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k].tolist()
