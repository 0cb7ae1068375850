"""Run one training stage with Lightning: freeze per plan, fit for a number of steps, save safetensors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader

from components.models.llava import LossWeighting
from components.training.checkpoints import save_weights
from components.training.config import DistributedConfig, OptimizerConfig
from components.training.freeze import FreezeReport, apply_freeze_plan
from components.training.stage_module import StageModule
from components.training.uniperceiver_tasks import ClassPrompts


@dataclass(frozen=True)
class StageResult:
    weights: Path
    freeze: FreezeReport
    final_loss: float
    seconds: float
    steps: int


def train_stage(
    model: nn.Module,
    objective: str,
    trainable: list[str],
    optimizer: OptimizerConfig,
    steps: int,
    dataloader: DataLoader,
    out_path: Path,
    logger: Logger | None = None,
    log_every: int = 10,
    progress_bar: bool = True,
    loss_weighting: LossWeighting = "token",
    region_weight: float = 0.0,
    tasks: dict[str, float] | None = None,
    seed: int = 0,
    class_prompts: ClassPrompts | None = None,
    caption_negatives: bool = False,
    distributed: DistributedConfig = DistributedConfig(),
) -> StageResult:
    """`tasks`, `seed`, `class_prompts`: the uni_perceiver objective's task weights, the seed of its task draws and
    its classification task's targets; `caption_negatives`: blip_pretrain's ITC also scores the captions' negatives;
    `distributed`: processes, devices and precision (one process on the CPU unless the recipe says otherwise).
    Under DDP every process trains its share of each batch and the weights are written once, by rank 0."""
    if distributed.strategy == "ddp_spawn":
        # the spawned processes receive the model and data through files, not passed descriptors,
        # which some containers refuse for tensors backed by memory-mapped files
        torch.multiprocessing.set_sharing_strategy("file_system")
    freeze = apply_freeze_plan(model, trainable)
    module = StageModule(model, objective, optimizer, total_steps=steps, loss_weighting=loss_weighting, region_weight=region_weight, tasks=tasks, seed=seed,
                         class_prompts=class_prompts, caption_negatives=caption_negatives)
    trainer = L.Trainer(
        max_steps=steps,
        max_epochs=-1,
        accelerator=distributed.accelerator,
        devices=distributed.devices,
        num_nodes=distributed.num_nodes,
        strategy=distributed.strategy,
        precision=distributed.precision,
        logger=logger if logger is not None else False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        log_every_n_steps=log_every,
        gradient_clip_val=optimizer.grad_clip,
        num_sanity_val_steps=0,
        default_root_dir=str(out_path.parent),
    )
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=dataloader)
    seconds = time.perf_counter() - start
    model.eval()
    loss = trainer.callback_metrics.get("train/loss")
    if trainer.is_global_zero:
        save_weights(model, out_path, metadata={"objective": objective, "steps": str(trainer.global_step)})
    return StageResult(out_path, freeze, float(loss) if loss is not None else float("nan"), seconds, trainer.global_step)
