"""Length-grouped batching: every sample once per pass, batches of similar length, a new grouping each pass."""

from __future__ import annotations

import torch

from components.data.length_grouped import LengthGroupedBatchSampler


def make(lengths, batch_size=4, megabatch_batches=3, drop_last=True, seed=0):
    return LengthGroupedBatchSampler(lengths, batch_size, torch.Generator().manual_seed(seed), drop_last, megabatch_batches)


def test_each_sample_once_per_pass_and_len_matches():
    lengths = torch.randint(1, 100, (103,), generator=torch.Generator().manual_seed(1)).tolist()
    for drop_last in (True, False):
        sampler = make(lengths, drop_last=drop_last)
        batches = list(sampler)
        seen = [i for b in batches for i in b]
        assert len(batches) == len(sampler)
        assert len(seen) == len(set(seen))
        if drop_last:
            assert all(len(b) == 4 for b in batches) and len(seen) > 103 - 12
        else:
            assert sorted(seen) == list(range(103))


def test_batches_are_tighter_than_random_ones():
    gen = torch.Generator().manual_seed(2)
    lengths = torch.randint(20, 130, (3200,), generator=gen)
    grouped = [lengths[b].max().item() / lengths[b].float().mean().item() for b in make(lengths.tolist(), 32, 50)]
    random = [lengths[b].max().item() / lengths[b].float().mean().item() for b in torch.randperm(3200, generator=gen).view(-1, 32)]
    assert sum(grouped) / len(grouped) < 1.1 < 1.3 < sum(random) / len(random)


def test_a_new_grouping_each_pass_and_the_same_for_the_same_seed():
    lengths = list(range(64))
    sampler = make(lengths, seed=3)
    first, second = list(sampler), list(sampler)
    assert first != second
    assert first == list(make(lengths, seed=3))
