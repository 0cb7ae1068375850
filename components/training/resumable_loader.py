"""A stage's data loader that can say where it is in its sample stream, and start again from there.

Lightning saves a loader's `state_dict()` in its checkpoints and hands it back to `load_state_dict()` before
iterating again on resume. The position is: the state of the generator that orders samples as it was when the
epoch began, and how many batches the epoch has yielded. A resumed loader replays the epoch's order and skips
the batches already trained on by drawing their indices, without loading them.

Lightning fetches no batch ahead from a loader that has a length (all of a stage's have), so every batch
yielded has been trained on when a checkpoint is taken. Some datasets draw from torch's global generator as
they load (a caption negative, a prompt template), and training draws noise and dropout masks from it, so the
state also holds that generator as it was after the last step; restoring it makes every later batch and step
those of a run never interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    def __init__(self, *args: Any, order_generator: torch.Generator, **kwargs: Any) -> None:
        """`order_generator`: the generator the sampler draws the order of samples from (the loader's or its
        batch sampler's)."""
        super().__init__(*args, **kwargs)
        if self.num_workers != 0:
            raise ValueError("a resumable loader loads in the training process (num_workers=0): workers would load skipped batches")
        self.order_generator = order_generator
        self._epoch_start: torch.Tensor | None = None
        self._yielded = 0
        self._restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch_start": self._epoch_start if self._epoch_start is not None else self.order_generator.get_state(),
            "order_now": self.order_generator.get_state(),
            "yielded": self._yielded,
            "rng_now": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restore = dict(state)

    def __iter__(self) -> Iterator[Any]:
        restore, self._restore = self._restore, None
        skip = 0
        if restore is not None:
            skip = restore["yielded"] if restore["yielded"] < len(self) else 0  # a finished epoch: the next begins
            self.order_generator.set_state(restore["epoch_start"] if skip else restore["order_now"])
            if not skip:  # as when the epoch began: a new iterator may draw its base seed from the global generator
                torch.set_rng_state(restore["rng_now"])
        self._epoch_start = self.order_generator.get_state()
        self._yielded = skip
        batches = super().__iter__()
        if skip:
            for _ in range(skip):
                batches._next_index()  # the single-process iterator's next batch of indices, not loaded
            torch.set_rng_state(restore["rng_now"])
        for batch in batches:
            self._yielded += 1
            yield batch
