"""A batch sampler's batches shared out among the processes of a DDP group.

Batches grouped by length or by video size are made by one batch sampler, so
a sampler per sample (DistributedSampler, which Lightning injects for plain
loaders) cannot split them. Every process draws the same batches instead, from
a generator seeded alike, and keeps every world-th from its rank on: each
batch trains on exactly one process. Each process yields as many batches as
the others (the tail that cannot go round is dropped), or DDP's gradient
all-reduce would wait for a step one process never takes.

The rank and world size are read from torch.distributed when iterated, not
when built: under `ddp_spawn` the loader is built before the processes exist.
Outside a process group it is the batch sampler it wraps.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch.distributed as dist
from torch.utils.data import Sampler


class RankSplitBatches(Sampler[list[int]]):
    def __init__(self, batches: Sampler[list[int]], rank: int | None = None, world_size: int | None = None) -> None:
        """`rank` and `world_size`: fixed, for a process that knows them without a process group (and for tests)."""
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither (then torch.distributed's are read)")
        if world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of world_size {world_size}'s (0 to {world_size - 1})")
        self.batches, self._rank, self._world_size = batches, rank, world_size

    def place(self) -> tuple[int, int]:
        """(rank, world size) of this process."""
        if self._world_size is not None:
            return self._rank, self._world_size
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return len(self.batches) // self.place()[1]

    def __iter__(self) -> Iterator[list[int]]:
        rank, world_size = self.place()
        mine = len(self.batches) // world_size * world_size  # batches that go round every process
        for k, batch in enumerate(self.batches):
            if k == mine:
                break
            if k % world_size == rank:
                yield batch
