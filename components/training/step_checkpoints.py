"""Training checkpoints every N steps, the latest kept, for a stage to resume from after it was killed."""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

from components.training.training_state_io import STATE_FILE

_NAME = re.compile(r"step-(\d{8})")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:08d}"


def saved_checkpoints(directory: Path) -> list[Path]:
    """The complete checkpoints in `directory`, oldest first (a folder still being written has another name)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NAME.fullmatch(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(directory: Path) -> Path | None:
    found = saved_checkpoints(directory)
    return found[-1] if found else None


class StepCheckpoints(Callback):
    """After every `every` optimizer steps (but the last: the stage's weights are written then), save the whole
    training state to `directory` and drop the older ones."""

    def __init__(self, directory: Path, every: int) -> None:
        if every < 1:
            raise ValueError(f"checkpoints every {every} steps: it must be at least 1")
        self.directory, self.every = directory, every

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        step = trainer.global_step
        if step % self.every or step >= trainer.max_steps:
            return
        path = checkpoint_path(self.directory, step)
        # the whole state, not weights only; every process takes part, rank 0 writes
        trainer.save_checkpoint(path, weights_only=False)
        for old in saved_checkpoints(self.directory):
            if old != path:
                trainer.strategy.remove_checkpoint(old)
