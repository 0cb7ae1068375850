"""A stage whose training loop stopped on SIGTERM ends the process as terminated (exit 128 + 15), even when the
exception of the handlers before Lightning's was lost, as it is when the signal lands in a garbage collector's
callback. Lightning then stops on its own flag with a SystemExit of code None, which would exit 0 as a success."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
import pytest

from components.training.config import OptimizerConfig
from components.training.stage_data import build_dataloader, build_stage_dataset
from components.training.stage_models import build_stage_model
from components.training.train_stage import train_stage


class TerminateAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_stage_stopped_by_sigterm_exits_as_terminated(built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    model = build_stage_model("llava_instruct", tiny_model_config, built_tokenizer)
    data = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 64)
    lost = signal.signal(signal.SIGTERM, lambda *_: None)  # the handlers before Lightning's: their exception lost
    try:
        with pytest.raises(SystemExit) as stopped:
            train_stage(model, "llava_instruct", ["connector"], OptimizerConfig(lr=1e-3), 50,
                        build_dataloader(data, 8, built_tokenizer.pad_id, seed=0), tmp_path / "w.safetensors",
                        progress_bar=False, callbacks=[TerminateAtStep(3)])
    finally:
        signal.signal(signal.SIGTERM, lost)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert not (tmp_path / "w.safetensors").exists(), "a stopped stage writes no weights"
