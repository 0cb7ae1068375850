"""The diffusion transformer's denoising loss, in training and held out at fixed timesteps and noise.

Videos are encoded by the frozen autoencoder into scaled latents; each is
noised to a timestep drawn uniformly, and the transformer predicts the noise
or the velocity (the model's `prediction`) given the caption, which is dropped
for a `caption_dropout` share of the batch in training. With `min_snr_gamma`,
training weights each sample's error by its timestep (min_snr_weights); the
held-out loss stays the plain mean squared error, comparable across recipes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from components.models.diffusion.dit import Caption
from components.models.diffusion.schedule import NoiseSchedule, Prediction
from components.models.diffusion.text_to_video import TextToVideo

HELD_OUT_TIMESTEPS: tuple[int, ...] = (50, 250, 500, 750, 950)
"""Where the held-out loss is measured, as fractions of a 1,000-step schedule (scaled to the model's)."""


def denoising_loss(
    model: TextToVideo, latents: Tensor, ids: Tensor, mask: Tensor, t: Tensor | None = None, noise: Tensor | None = None,
    drop: Tensor | None = None,
) -> Tensor:
    """MSE between the transformer's output and its target for the videos' scaled latents (see encode_videos);
    t, noise and drop are drawn unless given."""
    batch = len(latents)
    t = torch.randint(0, model.schedule.steps, (batch,), device=latents.device) if t is None else t
    noise = torch.randn(latents.shape, device=latents.device, dtype=latents.dtype) if noise is None else noise  # not _like: its layout would order the draws
    if drop is None:
        drop = torch.rand(batch, device=latents.device) < model.cfg.caption_dropout
    gamma = model.cfg.min_snr_gamma
    weight = None
    if gamma is not None:
        weight = min_snr_weights(model.schedule, t, model.cfg.prediction, gamma, model.cfg.min_snr_floor)
    return latent_denoising_loss(model, latents, model.caption(ids, mask), t, noise, drop, weight)


def min_snr_weights(schedule: NoiseSchedule, t: Tensor, prediction: Prediction, gamma: float,
                    floor: float = 0.0) -> Tensor:
    """(B,) Min-SNR-gamma weights of the squared errors at timesteps t: min(SNR, gamma) / SNR for epsilon and
    min(SNR, gamma) / (SNR + 1) for v, the factors that turn each one's error into min(SNR, gamma) times the error
    in x0 (an error e in the noise is one of e / sqrt(SNR) in x0, an error e in v one of e / sqrt(SNR + 1));
    none below `floor`."""
    snr = schedule.snr(t)
    return (snr.clamp(max=gamma) / (snr if prediction == "epsilon" else snr + 1)).clamp(min=floor)


def encode_videos(model: TextToVideo, videos: Tensor) -> Tensor:
    """The frozen autoencoder's scaled latents of a batch of videos."""
    with torch.no_grad():
        return model.autoencoder.encode(videos)


def latent_denoising_loss(model: TextToVideo, latents: Tensor, caption: Caption, t: Tensor, noise: Tensor, drop: Tensor,
                          weight: Tensor | None = None) -> Tensor:
    """The loss on latents already encoded, for a caption already read: the mean squared error, or with `weight`
    (B,) the mean over the batch of each sample's mean squared error times its weight."""
    schedule = model.schedule
    output = model.dit(schedule.add_noise(latents, noise, t), t, caption, drop)
    target = schedule.target(latents, noise, t, model.cfg.prediction)
    if weight is None:
        return F.mse_loss(output, target)
    per_sample = F.mse_loss(output, target, reduction="none").flatten(1).mean(1)
    return (per_sample * weight.to(output.dtype)).mean()


def held_out_losses(model: TextToVideo, batches: Iterable[dict[str, Tensor]], seed: int = 0,
                    timesteps: Sequence[int] = HELD_OUT_TIMESTEPS) -> dict[str, float]:
    """{"denoise_loss_t{t}": mean loss at t, ..., "denoise_loss": their mean}: every batch noised with noise drawn
    from `seed`, so two models (or two runs) are compared on the same noise; captions kept."""
    steps = model.schedule.steps
    ts = [min(steps - 1, round(t * steps / 1000)) for t in timesteps]
    totals, count = dict.fromkeys(ts, 0.0), 0
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        for batch in batches:
            latents = model.autoencoder.encode(batch["videos"])  # once a batch, not once a timestep
            caption = model.caption(batch["text_ids"], batch["text_mask"])
            n = len(latents)
            keep = torch.zeros(n, dtype=torch.bool)
            for t in ts:
                noise = torch.randn(latents.shape, generator=generator)
                totals[t] += latent_denoising_loss(model, latents, caption, torch.full((n,), t), noise, keep).item() * n
            count += n
    per_step = {f"denoise_loss_t{t}": totals[t] / max(count, 1) for t in ts}
    return per_step | {"denoise_loss": sum(per_step.values()) / len(per_step)}


@torch.no_grad()
def calibrate_latent_scale(model: TextToVideo, batches: Iterable[dict[str, Tensor]], limit: int = 8) -> float:
    """Set the autoencoder's latent_scale to 1 / the std of its posterior means over up to `limit` batches (latent
    diffusion's scale factor), so the diffusion transformer sees latents of unit variance; returns the scale."""
    model.autoencoder.latent_scale.fill_(1.0)
    means = []
    for i, batch in enumerate(batches):
        if i == limit:
            break
        means.append(model.autoencoder.encode(batch["videos"]).flatten())
    if not means:
        raise ValueError("calibrate_latent_scale needs at least one batch of videos")
    scale = 1.0 / torch.cat(means).std().clamp(min=1e-6).item()
    model.autoencoder.latent_scale.fill_(scale)
    return scale
