"""Batches by size or length shared out among a DDP group: every batch on exactly one process, as many on each."""

from __future__ import annotations

import pytest
import torch

from components.data.length_grouped import LengthGroupedBatchSampler
from components.data.video_clips import SizeBucketBatchSampler
from components.training.rank_split import RankSplitBatches

SIZES = [(1, 32, 32)] * 13 + [(5, 32, 48)] * 9 + [(9, 48, 32)] * 6


def buckets(seed: int = 0) -> SizeBucketBatchSampler:
    return SizeBucketBatchSampler(SIZES, 4, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("world_size", [2, 3])
def test_each_batch_goes_to_one_process_and_every_process_takes_as_many(world_size: int):
    every = list(buckets())  # 4 + 3 + 2 = 9 batches, the last of each bucket partial
    shares = [list(RankSplitBatches(buckets(), rank, world_size)) for rank in range(world_size)]
    assert [len(s) for s in shares] == [len(RankSplitBatches(buckets(), rank, world_size)) for rank in range(world_size)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(every) // world_size, "lockstep: DDP waits for every process"
    taken = [batch for share in shares for batch in share]
    assert sorted(map(tuple, taken)) == sorted(map(tuple, every[: len(taken)])), "the same batches, each on one process"
    assert all(len({SIZES[i] for i in batch}) == 1 for batch in taken), "still one size a batch"
    assert shares[0] != shares[1]


def test_outside_a_process_group_it_is_the_sampler_it_wraps():
    grouped = lambda: LengthGroupedBatchSampler([3, 9, 4, 7, 5, 2, 8, 6], 2, torch.Generator().manual_seed(1))  # noqa: E731
    alone = RankSplitBatches(grouped())
    assert alone.place() == (0, 1) and list(alone) == list(grouped()) and len(alone) == len(grouped())
    with pytest.raises(ValueError, match="give both rank and world_size"):
        RankSplitBatches(grouped(), rank=1)
    with pytest.raises(ValueError, match="rank 2 is not one of world_size 2's"):
        RankSplitBatches(grouped(), rank=2, world_size=2)
