"""The LightningModule every stage runs: an objective's loss, AdamW, warm-up and cosine decay.

What trains is decided before this module exists (the freeze plan); the
optimiser only sees parameters that require gradients.
"""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import torch
from torch import nn

from components.models.llava import LossWeighting
from components.training.config import OptimizerConfig
from components.training.freeze import in_group
from components.training.objectives import OBJECTIVES, TOKEN_OBJECTIVES
from components.training.uniperceiver_tasks import CAPTION_TASKS, ClassPrompts, TaskSampler


class StageModule(L.LightningModule):
    def __init__(
        self, model: nn.Module, objective: str, optimizer: OptimizerConfig, total_steps: int, loss_weighting: LossWeighting = "token",
        region_weight: float = 0.0, tasks: dict[str, float] | None = None, seed: int = 0, class_prompts: ClassPrompts | None = None,
        caption_negatives: bool = False, log_every: int = 1,
    ):
        """`log_every`: metrics are logged on every so many steps (and on the last), as often as the logger writes
        them (the Trainer's log_every_n_steps): Lightning's self.log costs about a millisecond a call."""
        super().__init__()
        self.model = model
        self.objective = objective
        loss_fn = TaskSampler(tasks or dict.fromkeys(CAPTION_TASKS, 1.0), seed, class_prompts) if objective == "uni_perceiver" else OBJECTIVES[objective]
        if objective in TOKEN_OBJECTIVES:
            loss_fn = partial(loss_fn, loss_weighting=loss_weighting)
        elif objective == "contrastive":
            loss_fn = partial(loss_fn, region_weight=region_weight)
        elif objective == "blip_pretrain":
            loss_fn = partial(loss_fn, caption_negatives=caption_negatives)
        self.loss_fn = loss_fn
        self.optimizer_config = optimizer
        self.total_steps = total_steps
        self.log_every = log_every

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, metrics = self.loss_fn(self.model, batch)
        step = self.trainer.global_step + 1  # the step this batch makes
        if step % self.log_every and step < self.total_steps:
            return loss
        size = len(next(iter(batch.values())))
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for name, value in metrics.items():
            self.log(f"train/{name}", value, batch_size=size)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=size)
        return loss

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if isinstance(self.loss_fn, TaskSampler):  # its own generator draws tasks and masks: resume draws on
            checkpoint["task_generator"] = self.loss_fn.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if isinstance(self.loss_fn, TaskSampler) and "task_generator" in checkpoint:
            self.loss_fn.generator.set_state(checkpoint["task_generator"])

    def configure_optimizers(self):
        cfg = self.optimizer_config
        groups = parameter_groups(self.model, cfg)
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, self.total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def parameter_groups(model: nn.Module, cfg: OptimizerConfig) -> list[dict]:
    """The trainable parameters in AdamW groups: matrices decay, vectors do not, and each part in
    cfg.lr_scale gets its fraction of the learning rate."""
    unknown = [part for part in cfg.lr_scale if not any(in_group(n, part) for n, p in model.named_parameters() if p.requires_grad)]
    if unknown:
        raise ValueError(f"optimizer.lr_scale names {', '.join(unknown)}, which has no trainable parameter in this stage")
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            scale = next((s for part, s in cfg.lr_scale.items() if in_group(name, part)), 1.0)
            groups.setdefault((scale, param.ndim >= 2), []).append(param)
    # decaying groups first, as before lr_scale existed: the gradient-norm sum then adds in the same
    # order, so recipes without lr_scale train bit for bit as they did
    ordered = sorted(groups.items(), key=lambda item: not item[0][1])
    return [
        {"params": params, "lr": cfg.lr * scale, "weight_decay": cfg.weight_decay if decays else 0.0}
        for (scale, decays), params in ordered
    ]


def lr_factor(step: int, cfg: OptimizerConfig, total_steps: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
