"""An exponential moving average of a stage's trainable weights, which become the stage's weights when it ends.

Diffusion models are sampled from such an average (DDPM, DiT): the last
weights of a run carry the noise of its last steps, the average does not.
After every optimizer step the average moves towards the weights by
1 - decay, where the decay ramps up as (1 + step) / (10 + step) (0.18
after the first step) until it reaches the configured one, so the first,
random weights are soon forgotten. The average is part of the training
state a resumed stage starts from.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn


def warmed_decay(decay: float, step: int) -> float:
    """The decay after optimizer step `step` (counted from 1)."""
    return min(decay, (1 + step) / (10 + step))


class WeightAverage(Callback):
    def __init__(self, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"a weight average's decay must lie strictly between 0 and 1 (got {decay})")
        self.decay = decay
        self.average: dict[str, torch.Tensor] = {}
        self._params: dict[str, nn.Parameter] = {}

    @property
    def state_key(self) -> str:
        return "WeightAverage"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._params = {name: p for name, p in pl_module.named_parameters() if p.requires_grad}
        if self.average:  # restored from a checkpoint: it must average the same parameters
            if self.average.keys() != self._params.keys():
                raise ValueError("the checkpoint's weight average is of other parameters than this stage trains")
            self.average = {name: value.to(self._params[name].device) for name, value in self.average.items()}
        else:
            self.average = {name: p.detach().clone() for name, p in self._params.items()}

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        weight = 1 - warmed_decay(self.decay, trainer.global_step)
        for name, param in self._params.items():
            self.average[name].lerp_(param.detach(), weight)

    @torch.no_grad()
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, param in self._params.items():
            param.copy_(self.average[name])

    def state_dict(self) -> dict[str, Any]:
        return {"average": dict(self.average)}  # the decay is the recipe's, which a resumed run must not have changed

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.average = dict(state_dict["average"])
