"""A stage with `ema_decay` ends with the moving average of its trainable weights, computed here from every step's."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from pydantic import ValidationError

from components.training.checkpoints import load_weights
from components.training.config import OptimizerConfig
from components.training.stage_data import build_dataloader, build_stage_dataset
from components.training.stage_models import build_stage_model
from components.training.train_stage import train_stage
from components.training.weight_average import WeightAverage, warmed_decay

STEPS, DECAY = 12, 0.7


class RecordWeights(L.Callback):
    """The trainable weights before the first step and after every step, as the average sees them."""

    def __init__(self) -> None:
        self.seen: list[dict[str, torch.Tensor]] = []

    def _record(self, pl_module: L.LightningModule) -> None:
        self.seen.append({n.removeprefix("model."): p.detach().clone() for n, p in pl_module.named_parameters() if p.requires_grad})

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self._record(pl_module)


def test_the_stage_ends_with_the_average_of_its_steps_weights(built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    torch.manual_seed(0)
    model = build_stage_model("llava_instruct", tiny_model_config, built_tokenizer)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith(("connector", "language_model"))}
    data = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 64)
    record = RecordWeights()
    result = train_stage(model, "llava_instruct", ["connector", "language_model"], OptimizerConfig(lr=1e-2, ema_decay=DECAY), STEPS,
                         build_dataloader(data, 8, built_tokenizer.pad_id, seed=0), tmp_path / "w.safetensors", progress_bar=False,
                         checkpoint_every=0, callbacks=[record])
    assert len(record.seen) == STEPS + 1
    average = dict(record.seen[0])
    for step, weights in enumerate(record.seen[1:], start=1):
        keep = warmed_decay(DECAY, step)
        average = {n: keep * average[n] + (1 - keep) * weights[n] for n in average}
    saved = load_weights(result.weights)
    for name, expected in average.items():
        torch.testing.assert_close(saved[name], expected, rtol=1e-5, atol=1e-6)
    last = record.seen[-1]
    assert any(not torch.allclose(saved[n], last[n]) for n in last), "the saved weights are the last step's, not the average"
    for name, before in frozen_before.items():
        assert torch.equal(saved[name], before), f"{name} is frozen and must not be averaged"


def test_the_decay_ramps_up_to_the_one_configured_and_is_validated():
    assert warmed_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmed_decay(0.999, 100) == pytest.approx(101 / 110)
    assert warmed_decay(0.9, 10_000) == 0.9
    with pytest.raises(ValidationError, match="ema_decay"):
        OptimizerConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        WeightAverage(0.0)
