"""The forward (noising) process of a diffusion model, and what a denoiser is trained to predict.

A schedule of betas over `steps` training timesteps fixes alpha_bar(t), the
product of (1 - beta) up to t; a clean sample x0 noised to timestep t is
    x_t = sqrt(alpha_bar(t)) * x0 + sqrt(1 - alpha_bar(t)) * noise.
The denoiser predicts either the noise (`epsilon`, DDPM) or the velocity
    v = sqrt(alpha_bar(t)) * noise - sqrt(1 - alpha_bar(t)) * x0
(`v`, progressive distillation; Imagen Video), and either gives back x0 and
the noise. Betas follow DDPM (`linear`, 1e-4 to 0.02 over 1,000 steps), latent
diffusion (`scaled_linear`, linear in sqrt(beta)) or the improved-DDPM
cosine of alpha_bar (`cosine`). Inference visits `timesteps(n)`, n of the
training steps evenly spaced from 0 ("leading" spacing).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

Prediction = Literal["epsilon", "v"]
_COSINE_OFFSET, _MAX_COSINE_BETA = 0.008, 0.999


class NoiseScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["linear", "scaled_linear", "cosine"] = "linear"
    steps: int = Field(1000, ge=2, le=100_000)
    beta_start: float = Field(1e-4, gt=0, lt=1)
    beta_end: float = Field(0.02, gt=0, lt=1)
    """The first and last beta of `linear` and `scaled_linear`; the cosine schedule has none."""

    @model_validator(mode="after")
    def _check(self) -> NoiseScheduleConfig:
        if self.beta_start >= self.beta_end:
            raise ValueError(f"NoiseScheduleConfig: beta_start={self.beta_start} must be below beta_end={self.beta_end}")
        return self


def make_betas(config: NoiseScheduleConfig) -> Tensor:
    """(steps,) float64 betas."""
    if config.kind == "linear":
        return torch.linspace(config.beta_start, config.beta_end, config.steps, dtype=torch.float64)
    if config.kind == "scaled_linear":
        return torch.linspace(config.beta_start**0.5, config.beta_end**0.5, config.steps, dtype=torch.float64) ** 2
    t = torch.arange(config.steps + 1, dtype=torch.float64) / config.steps
    alpha_bar = torch.cos((t + _COSINE_OFFSET) / (1 + _COSINE_OFFSET) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=_MAX_COSINE_BETA)


class NoiseSchedule:
    def __init__(self, config: NoiseScheduleConfig | None = None) -> None:
        self.config = config or NoiseScheduleConfig()
        betas = make_betas(self.config)
        self.betas = betas.float()
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0).float()  # alpha_bar(t), (steps,)

    @property
    def steps(self) -> int:
        return self.config.steps

    def alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        """alpha_bar at timesteps t (B,), shaped (B, 1, ...) to broadcast against `like` (B, ...)."""
        if t.min() < 0 or t.max() >= self.steps:
            raise ValueError(f"timesteps must lie in 0..{self.steps - 1}; got {t.min().item()}..{t.max().item()}")
        a = self.alphas_cumprod.to(like.device)[t.long()].to(like.dtype)
        return a.view(-1, *([1] * (like.dim() - 1)))

    def snr(self, t: Tensor) -> Tensor:
        """The signal-to-noise ratio alpha_bar / (1 - alpha_bar) at timesteps t (B,), as (B,)."""
        a = self.alpha_bar(t, t.float())
        return a / (1 - a)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        a = self.alpha_bar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def velocity(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        a = self.alpha_bar(t, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def target(self, x0: Tensor, noise: Tensor, t: Tensor, prediction: Prediction) -> Tensor:
        """What a denoiser of `prediction` type should output for x_t = add_noise(x0, noise, t)."""
        return noise if prediction == "epsilon" else self.velocity(x0, noise, t)

    def split(self, x_t: Tensor, output: Tensor, t: Tensor, prediction: Prediction) -> tuple[Tensor, Tensor]:
        """(x0, noise) that the denoiser's output says x_t is made of."""
        a = self.alpha_bar(t, x_t)
        if prediction == "epsilon":
            return (x_t - (1 - a).sqrt() * output) / a.sqrt(), output
        return a.sqrt() * x_t - (1 - a).sqrt() * output, a.sqrt() * output + (1 - a).sqrt() * x_t

    def timesteps(self, num_steps: int) -> Tensor:
        """The `num_steps` timesteps an inference run visits, last first: 0, k, 2k, ... reversed, k = steps // n."""
        if not 1 <= num_steps <= self.steps:
            raise ValueError(f"num_steps={num_steps} must lie in 1..{self.steps} (the training timesteps)")
        stride = self.steps // num_steps
        return (torch.arange(num_steps) * stride).flip(0)

    def timestep_for_strength(self, strength: float, num_steps: int) -> int:
        """Where SDEdit starts: the index into timesteps(num_steps) whose noise level is `strength` of the way
        from clean (0) to pure noise (1)."""
        if not 0 < strength <= 1:
            raise ValueError(f"strength={strength} must lie in (0, 1]: the fraction of the noising to undo")
        return num_steps - max(1, round(strength * num_steps))
