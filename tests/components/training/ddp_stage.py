"""One tiny language-model stage trained by train_stage, on one process or as one rank of a DDP group.

Run by test_distributed.py as a script, `ddp_stage.py OUT BATCH DEVICES [grouped | PRECISION]`: `python ddp_stage.py
OUT 8 1` for one process, under `torch.distributed.run --nproc_per_node 2 ... OUT 4 2` for two; the same model, data
and optimiser each time. `grouped`: the stage's own loader with batches grouped by length (build_dataloader), and each
rank writes the samples it trained on to OUT.rank{R}.json; a precision (`bf16-mixed`) trains at that precision.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset, DistributedSampler

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from components.models.builders import build_language_model  # noqa: E402
from components.models.config import LanguageModelConfig  # noqa: E402
from components.training.config import DistributedConfig, OptimizerConfig  # noqa: E402
from components.training.stage_data import build_dataloader  # noqa: E402
from components.training.stage_models import LanguageModelOnly  # noqa: E402
from components.training.train_stage import train_stage  # noqa: E402

VOCAB, LENGTH, SAMPLES, STEPS = 50, 12, 64, 6


class FixedLengthTexts(Dataset):
    """Sequences of one length, so a mean over a rank's tokens weighs every sample as a mean over all would."""

    def __init__(self) -> None:
        self.ids = torch.randint(1, VOCAB, (SAMPLES, LENGTH), generator=torch.Generator().manual_seed(1))

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i], "attention_mask": torch.ones(LENGTH, dtype=torch.long)}

    def length_estimates(self) -> list[int]:
        return [LENGTH] * SAMPLES


class SamplesSeen(Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.rows = out, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.rows += batch["input_ids"].tolist()

    def on_train_end(self, trainer, module) -> None:
        self.out.with_name(f"{self.out.name}.rank{trainer.global_rank}.json").write_text(json.dumps(self.rows))


def main(out: Path, batch_size: int, devices: int, grouped: bool, precision: str = "32-true") -> None:
    torch.manual_seed(0)
    model = LanguageModelOnly(build_language_model(LanguageModelConfig(dim=32, depth=2, heads=2, mlp_hidden=64, max_seq_len=32), VOCAB))
    if grouped:  # shared out among the ranks by the loader itself (RankSplitBatches)
        loader = build_dataloader(FixedLengthTexts(), batch_size, pad_id=0, seed=0, group_by_length=True)
    else:  # in order, each rank every other sample: a step's samples are the 1-process batch's (Lightning keeps a given sampler)
        sampler = DistributedSampler(FixedLengthTexts(), num_replicas=devices, rank=int(os.environ.get("RANK", "0")), shuffle=False)
        loader = DataLoader(FixedLengthTexts(), batch_size=batch_size, sampler=sampler)
    distributed = DistributedConfig(strategy="ddp" if devices > 1 else "auto", devices=devices, precision=precision)
    result = train_stage(model, "language_modeling", ["language_model"], OptimizerConfig(lr=3e-3, grad_clip=1.0), STEPS, loader, out,
                         progress_bar=False, distributed=distributed, callbacks=[SamplesSeen(out)] if grouped else ())
    if result.steps != STEPS:
        raise SystemExit(f"trained {result.steps} steps, not {STEPS}")


if __name__ == "__main__":
    option = sys.argv[4] if len(sys.argv) > 4 else ""
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), option == "grouped", option if option not in ("", "grouped") else "32-true")
