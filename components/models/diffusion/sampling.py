"""Reverse steps and the sampling loop: DDPM (ancestral) and DDIM, with classifier-free guidance.

A step goes from timestep t to the previous visited timestep `prev` (-1 after
the last), given the denoiser's split of x_t into (x0, noise):
  DDPM  the posterior q(x_prev | x_t, x0) with the variance of "fixed_small"
        (beta-tilde), its noise added except on the last step;
  DDIM  x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) noise + sigma z,
        sigma = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev));
        eta 0 is deterministic.
Steps that skip timesteps use alpha_bar at both ends (beta_t = 1 - a_t / a_prev),
so 50 steps sample a model trained on 1,000.

Guidance mixes the conditional and unconditional outputs,
    out = uncond + scale * (cond - uncond),
scale 1 being the conditional model alone; with an interval it is applied only
at noise levels sigma = sqrt((1 - alpha_bar) / alpha_bar) within it, and the
conditional model alone steps elsewhere (Kynkaanniemi et al. 2024: guidance at
the highest noise levels costs variety, at the lowest it does little).

Starting from a partly noised sample instead of pure noise (`start`,
`start_index`) is SDEdit; `fixed` keeps the given parts of the sample at the
data, re-noised to each step (extending or animating a video, the way
inpainting keeps its known pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from components.models.diffusion.schedule import NoiseSchedule, Prediction

Sampler = Literal["ddpm", "ddim"]
Denoiser = Callable[[Tensor, Tensor], Tensor]
"""(x_t (B, ...), t (B,)) -> the model's output for x_t: its noise or velocity prediction."""


def _alpha_bars(schedule: NoiseSchedule, t: int, prev: int) -> tuple[float, float]:
    a_t = float(schedule.alphas_cumprod[t])
    return a_t, float(schedule.alphas_cumprod[prev]) if prev >= 0 else 1.0


def ddpm_step(schedule: NoiseSchedule, x_t: Tensor, x0: Tensor, t: int, prev: int, noise: Tensor | None) -> Tensor:
    a_t, a_prev = _alpha_bars(schedule, t, prev)
    beta = 1 - a_t / a_prev
    mean = (a_prev**0.5 * beta / (1 - a_t)) * x0 + ((1 - beta) ** 0.5 * (1 - a_prev) / (1 - a_t)) * x_t
    if prev < 0 or noise is None:
        return mean
    variance = max((1 - a_prev) / (1 - a_t) * beta, 1e-20)
    return mean + variance**0.5 * noise


def ddim_step(schedule: NoiseSchedule, x0: Tensor, eps: Tensor, t: int, prev: int, eta: float, noise: Tensor | None) -> Tensor:
    a_t, a_prev = _alpha_bars(schedule, t, prev)
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
    out = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
    if sigma > 0 and noise is not None:
        out = out + sigma * noise
    return out


class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sampler: Sampler = "ddim"
    steps: int = Field(50, ge=1, le=100_000)
    eta: float = Field(0.0, ge=0, le=1)
    """DDIM's noise: 0 deterministic, 1 as much as DDPM's."""
    guidance: float = Field(1.0, ge=0)
    """Classifier-free guidance scale: 1 the conditional model alone, 0 the unconditional one."""
    guidance_interval: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]] | None = None
    """(low, high]: the noise levels sigma = sqrt((1 - alpha_bar) / alpha_bar) at which guidance is applied, e.g.
    (0.28, 5.42): on the linear schedule of 1,000 steps, timesteps 82 to 578; None: at every step."""
    clip: float | None = Field(None, gt=0)
    """Clamp each predicted x0 to [-clip, clip] (pixels in [-1, 1]); None for latents."""

    @model_validator(mode="after")
    def _interval(self) -> SamplingConfig:
        if self.guidance_interval is not None and not self.guidance_interval[0] < self.guidance_interval[1]:
            raise ValueError(f"guidance_interval {list(self.guidance_interval)}: give [low, high] noise levels with low < high, e.g. [0.28, 5.42]")
        return self


def guided(cond: Denoiser, uncond: Denoiser | None, scale: float, applies: Callable[[Tensor], bool] | None = None) -> Denoiser:
    """The classifier-free-guided denoiser; `uncond` may be None only for scale 1. `applies(t)`: whether to guide at
    the batch's timesteps t (guidance_window); elsewhere the conditional model alone, and no unconditional pass."""
    if scale == 1.0:
        return cond
    if uncond is None:
        raise ValueError(f"guidance scale {scale} needs the unconditional denoiser (the caption-dropped one)")

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        if applies is not None and not applies(t):
            return cond(x, t)
        u = uncond(x, t)
        return u + scale * (cond(x, t) - u)

    return denoise


def guidance_window(schedule: NoiseSchedule, interval: tuple[float, float] | None) -> Callable[[Tensor], bool] | None:
    """Whether timesteps t (B,), all one timestep as a sampler visits them, lie in the noise-level `interval`."""
    if interval is None:
        return None
    low, high = interval

    def applies(t: Tensor) -> bool:
        return low < float(schedule.snr(t[:1])) ** -0.5 <= high  # the noise level sigma is 1 / sqrt(SNR)

    return applies


def sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    prediction: Prediction,
    config: SamplingConfig,
    generator: torch.Generator | None = None,
    start: Tensor | None = None,
    start_index: int = 0,
    fixed: tuple[Tensor, Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """A sample of `shape` from pure noise, or from `start` (clean data) noised to timesteps(steps)[start_index].

    `fixed` = (data, mask): where mask is 1 the sample is the data, noised to the current timestep before each step
    and clean at the end."""
    timesteps = schedule.timesteps(config.steps).tolist()
    if not 0 <= start_index < len(timesteps):
        raise ValueError(f"start_index={start_index} must lie in 0..{len(timesteps) - 1}")
    noise = torch.randn(shape, generator=generator)
    batch = shape[0]
    x = noise if start is None else schedule.add_noise(start, noise, torch.full((batch,), timesteps[start_index]))
    visited = timesteps[start_index:]
    for i, t in enumerate(visited):
        prev = visited[i + 1] if i + 1 < len(visited) else -1
        tt = torch.full((batch,), t, dtype=torch.long)
        if fixed is not None:
            data, mask = fixed
            x = mask * schedule.add_noise(data, torch.randn(shape, generator=generator), tt) + (1 - mask) * x
        with torch.no_grad():
            x0, eps = schedule.split(x, denoiser(x, tt), tt, prediction)
        if config.clip is not None:
            a = schedule.alpha_bar(tt, x)
            x0 = x0.clamp(-config.clip, config.clip)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        step_noise = torch.randn(shape, generator=generator) if prev >= 0 else None
        if config.sampler == "ddpm":
            x = ddpm_step(schedule, x, x0, t, prev, step_noise)
        else:
            x = ddim_step(schedule, x0, eps, t, prev, config.eta, step_noise)
        if progress is not None:
            progress(i + 1, len(visited))
    if fixed is not None:
        data, mask = fixed
        x = mask * data + (1 - mask) * x
    return x
