"""A stage logs its metrics on every `log_every` steps, as often as its logger writes them, and on the last one."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

from components.training.config import OptimizerConfig
from components.training.stage_data import build_dataloader, build_stage_dataset
from components.training.stage_models import build_stage_model
from components.training.train_stage import train_stage


class Seen(L.Callback):
    """The loss as Lightning holds it after each step (None before any is logged)."""

    def __init__(self) -> None:
        self.losses: list[float | None] = []

    def on_train_batch_end(self, trainer: L.Trainer, *_) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        self.losses.append(None if loss is None else float(loss))


def test_metrics_are_logged_every_few_steps_and_at_the_end(built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    torch.manual_seed(0)
    model = build_stage_model("contrastive", tiny_model_config, built_tokenizer)
    loader = build_dataloader(build_stage_dataset("contrastive", built_dataset, built_tokenizer, 32, 64), 8, built_tokenizer.pad_id, seed=0)
    logger, seen = CSVLogger(tmp_path / "logs", name="stage"), Seen()
    result = train_stage(model, "contrastive", ["vision", "text", "image_projection", "text_projection"], OptimizerConfig(lr=1e-3), 10,
                         loader, tmp_path / "w.safetensors", logger=logger, log_every=4, progress_bar=False, callbacks=[seen])
    first, second, last = seen.losses[3], seen.losses[7], seen.losses[9]
    assert seen.losses == [None] * 3 + [first] * 4 + [second] * 2 + [last], "self.log on steps 4, 8 and 10 only"
    assert len({first, second, last}) == 3
    with open(Path(logger.log_dir) / "metrics.csv") as rows:
        logged = {int(row["step"]): float(row["train/loss"]) for row in csv.DictReader(rows) if row.get("train/loss")}
    assert sorted(logged) == [3, 7], "steps 4 and 8 (the logger counts from 0), when the Trainer writes"
    # the last step is logged too, for the stage's final loss (Lightning's logger does not write it)
    assert result.steps == 10 and torch.isfinite(torch.tensor(result.final_loss)) and result.final_loss == last
