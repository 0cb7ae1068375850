"""Typed settings of a training stage: its optimiser, and how it is distributed."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["adamw"] = "adamw"
    lr: Annotated[float, Field(gt=0, le=1.0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    """The cosine schedule decays the learning rate to lr * min_lr_ratio at the last step."""
    grad_clip: Annotated[float, Field(gt=0)] | None = 1.0
    lr_scale: dict[str, Annotated[float, Field(gt=0, le=1.0)]] = {}
    """Parts that train at a fraction of lr, e.g. {language_model: 0.1} (CogVLM's SFT); the rest at lr."""
    ema_decay: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Keep an exponential moving average of the trainable weights, with this decay, and end the stage with it
    (see training.weight_average; diffusion models are sampled from one). None: the last weights."""


class DistributedConfig(BaseModel):
    """How a stage's training is spread over processes and devices (Lightning's Trainer arguments).

    `batch_size` is per process: with `devices: 2` each optimiser step sees twice the stage's batch.
    One process per device is started by Lightning (`ddp_spawn`, from inside a pipeline) or by a launcher
    that sets the ranks (`ddp` under torchrun, SLURM or a Kubernetes job; see the README).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["auto", "ddp", "ddp_spawn", "fsdp"] = "auto"
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    devices: Annotated[int, Field(ge=1, le=1024)] = 1
    num_nodes: Annotated[int, Field(ge=1, le=4096)] = 1
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "32-true"
    """bf16-mixed on GPUs that have it (A100, H100); 32-true on CPU."""
    deterministic: bool = False
    """Only deterministic kernels (Lightning's `deterministic`; on GPUs slower, and some operations refuse). On one
    process a stage killed and resumed from its checkpoint then ends with the weights of a run never interrupted."""

    @model_validator(mode="after")
    def _possible(self) -> DistributedConfig:
        if self.strategy == "ddp_spawn" and self.num_nodes > 1:
            raise ValueError(f"strategy ddp_spawn starts its processes on this machine only, so num_nodes must be 1 (got {self.num_nodes}); "
                             "across machines, use ddp under a launcher (torchrun, srun, a Kubernetes job)")
        if self.strategy == "fsdp" and self.accelerator == "cpu":
            raise ValueError("strategy fsdp shards over GPUs (Lightning's FSDP has no CPU mode): set accelerator gpu "
                             "(MMOPS_ACCELERATOR=gpu), or use ddp on CPUs")
        return self

    @property
    def processes(self) -> int:
        return self.devices * self.num_nodes
