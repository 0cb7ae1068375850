"""Run one training stage with Lightning: freeze per plan, fit for a number of steps, save safetensors."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import nn
from torch.utils.data import DataLoader

from components.models.llava import LossWeighting
from components.training.checkpoints import save_weights
from components.training.config import DistributedConfig, OptimizerConfig
from components.training.freeze import FreezeReport, apply_freeze_plan
from components.training.rank_split import RankSplitBatches
from components.training.stage_module import StageModule
from components.training.step_checkpoints import StepCheckpoints, latest_checkpoint
from components.training.training_state_io import SafetensorsCheckpointIO
from components.training.uniperceiver_tasks import ClassPrompts
from components.training.weight_average import WeightAverage


@dataclass(frozen=True)
class StageResult:
    weights: Path
    freeze: FreezeReport
    final_loss: float
    seconds: float
    steps: int
    resumed_from: Path | None = None
    """The training checkpoint the stage started from, when it resumed."""


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
    checkpoint_every: int = 0,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> StageResult:
    """`tasks`, `seed`, `class_prompts`: the uni_perceiver objective's task weights, the seed of its task draws and
    its classification task's targets; `caption_negatives`: blip_pretrain's ITC also scores the captions' negatives;
    `distributed`: processes, devices and precision (one process on the CPU unless the recipe says otherwise).
    Under DDP every process trains its share of each batch and the weights are written once, by rank 0.
    `checkpoint_every`: save the whole training state (safetensors and JSON, see training_state_io) to
    `checkpoints/` beside `out_path` every so many steps, the latest kept (0: never); `resume`: start from the
    latest there, if any, rather than from step 0; `callbacks`: more of Lightning's, e.g. to watch the steps."""
    if distributed.strategy == "ddp_spawn":
        # the spawned processes receive the model and data through files, not passed descriptors,
        # which some containers refuse for tensors backed by memory-mapped files
        torch.multiprocessing.set_sharing_strategy("file_system")
    checkpoints = training_checkpoints(out_path)
    freeze = apply_freeze_plan(model, trainable)
    module = StageModule(model, objective, optimizer, total_steps=steps, loss_weighting=loss_weighting, region_weight=region_weight, tasks=tasks, seed=seed,
                         class_prompts=class_prompts, caption_negatives=caption_negatives, log_every=log_every)
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
        deterministic=distributed.deterministic,
        callbacks=stage_callbacks(callbacks, optimizer, checkpoints, checkpoint_every),
        plugins=[SafetensorsCheckpointIO()],
        use_distributed_sampler=not isinstance(getattr(dataloader, "batch_sampler", None), RankSplitBatches),  # it splits its own
    )
    start_from = latest_checkpoint(checkpoints) if resume else None
    start = time.perf_counter()
    fit_ending_as_terminated(trainer, module, dataloader, start_from)
    seconds = time.perf_counter() - start
    model.eval()
    loss = trainer.callback_metrics.get("train/loss")
    if trainer.is_global_zero:
        save_weights(model, out_path, metadata={"objective": objective, "steps": str(trainer.global_step)})
        shutil.rmtree(checkpoints, ignore_errors=True)  # the weights are written: nothing left to resume
    return StageResult(out_path, freeze, float(loss) if loss is not None else float("nan"), seconds, trainer.global_step,
                       start_from)


def fit_ending_as_terminated(trainer: L.Trainer, module: StageModule, dataloader: DataLoader, start_from: Path | None) -> None:
    """Fit; a SIGTERM that stopped the training loop ends the process as terminated (exit 128 + 15), as any other does.
    Lightning's handler flags the signal and passes it on to the ones before it (the CLI's, Prefect's), whose
    exception normally ends the stage. When that exception is lost, because the signal landed in code that swallows
    exceptions (a garbage collector's callback), the loop stops on the flag alone with a SystemExit of code None:
    exit 0, as if the run had succeeded."""
    try:
        trainer.fit(module, train_dataloaders=dataloader, ckpt_path=start_from)
    except SIGTERMException as stopped:
        raise SystemExit(128 + signal.SIGTERM) from stopped


def stage_callbacks(given: Sequence[Callback], optimizer: OptimizerConfig, checkpoints: Path, checkpoint_every: int) -> list[Callback]:
    """The caller's callbacks, then the weight average (if the optimizer keeps one), then the step checkpoints:
    Lightning calls them in this order after a step, so a checkpoint holds the average of its own step."""
    averaging = [WeightAverage(optimizer.ema_decay)] if optimizer.ema_decay is not None else []
    saving = [StepCheckpoints(checkpoints, checkpoint_every)] if checkpoint_every else []
    return [*given, *averaging, *saving]


def training_checkpoints(out_path: Path) -> Path:
    """Where the stage writing `out_path` keeps its training checkpoints."""
    return out_path.parent / "checkpoints"
