"""Typed optimiser settings of a training stage."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


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
