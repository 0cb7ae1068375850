"""Min-SNR-gamma weighting of the denoising loss: the signal-to-noise ratio against diffusers', and the weighted loss
read back as min(SNR, gamma) times the error in x0 of each sample, for both predictions."""

import pytest
import torch
from pydantic import ValidationError

from components.models.builders import build_text_to_video
from components.models.config import DiffusionConfig, DiTConfig, TextEncoderConfig, VideoAutoencoderConfig
from components.models.diffusion.schedule import NoiseSchedule, NoiseScheduleConfig
from components.models.family import ModelConfig
from components.training.diffusion_losses import denoising_loss, latent_denoising_loss, min_snr_weights

diffusers = pytest.importorskip("diffusers")
from diffusers.training_utils import compute_snr  # noqa: E402

VOCAB = 20
T = torch.tensor([0, 30, 250, 600, 999])


def tiny_model(prediction: str, gamma: float | None, floor: float = 0.0):
    torch.manual_seed(0)
    cfg = ModelConfig(
        text_encoder=TextEncoderConfig(dim=16, depth=1, heads=2, max_len=8), clip_embed_dim=8,
        video_autoencoder=VideoAutoencoderConfig(hidden=8, groups=4),
        diffusion=DiffusionConfig(dit=DiTConfig(dim=16, depth=2, heads=2), prediction=prediction, min_snr_gamma=gamma,
                                  min_snr_floor=floor),
    )
    return build_text_to_video(cfg, vocab_size=VOCAB, pad_id=0).eval()


def inputs(n: int = len(T)):
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(n, 4, 1, 4, 4, generator=generator)
    noise = torch.randn(n, 4, 1, 4, 4, generator=generator)
    ids = torch.randint(1, VOCAB, (n, 6), generator=generator)
    return latents, noise, ids, torch.ones_like(ids, dtype=torch.bool)


def test_snr_matches_diffusers():
    ours = NoiseSchedule(NoiseScheduleConfig(kind="linear"))
    theirs = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    torch.testing.assert_close(ours.snr(T), compute_snr(theirs, T), rtol=1e-4, atol=0)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_weighted_loss_is_min_snr_times_the_error_in_x0(prediction):
    gamma = 5.0
    model = tiny_model(prediction, gamma)
    latents, noise, ids, mask = inputs()
    drop = torch.zeros(len(T), dtype=torch.bool)
    with torch.no_grad():
        loss = denoising_loss(model, latents, ids, mask, t=T, noise=noise, drop=drop)
        x_t = model.schedule.add_noise(latents, noise, T)
        x0, _ = model.schedule.split(x_t, model.dit(x_t, T, model.caption(ids, mask), drop), T, prediction)
    error_in_x0 = ((x0 - latents) ** 2).flatten(1).mean(1)
    expected = (model.schedule.snr(T).clamp(max=gamma) * error_in_x0).mean()
    torch.testing.assert_close(loss, expected, rtol=2e-4, atol=1e-6)


def test_weights_leave_the_plain_loss_where_gamma_exceeds_every_snr():
    schedule = NoiseSchedule()
    huge = schedule.snr(torch.tensor([0])).item() * 2
    torch.testing.assert_close(min_snr_weights(schedule, T, "epsilon", huge), torch.ones(len(T)))
    v = min_snr_weights(schedule, T, "v", 5.0)
    assert v[0] < 0.01 and v[-1] < 0.01 < v[2], "v: nearly clean and nearly pure-noise timesteps weigh least"


def test_unweighted_model_keeps_the_mean_squared_error():
    model = tiny_model("v", None)
    latents, noise, ids, mask = inputs()
    drop = torch.zeros(len(T), dtype=torch.bool)
    with torch.no_grad():
        plain = denoising_loss(model, latents, ids, mask, t=T, noise=noise, drop=drop)
        ones = latent_denoising_loss(model, latents, model.caption(ids, mask), T, noise, drop, torch.ones(len(T)))
    torch.testing.assert_close(plain, ones)


def test_the_floor_keeps_the_noisiest_timesteps_and_leaves_the_rest():
    schedule, floor = NoiseSchedule(), 0.2
    plain, floored = min_snr_weights(schedule, T, "v", 5.0), min_snr_weights(schedule, T, "v", 5.0, floor)
    assert plain[-1] < 1e-3 and floored[-1] == pytest.approx(floor)
    torch.testing.assert_close(floored, plain.clamp(min=floor))
    assert floored[2] == plain[2] > floor, "a timestep Min-SNR weighs above the floor keeps its weight"

    model = tiny_model("v", 5.0, floor)
    latents, noise, ids, mask = inputs()
    drop = torch.zeros(len(T), dtype=torch.bool)
    with torch.no_grad():
        loss = denoising_loss(model, latents, ids, mask, t=T, noise=noise, drop=drop)
        expected = latent_denoising_loss(model, latents, model.caption(ids, mask), T, noise, drop, floored)
    torch.testing.assert_close(loss, expected)


def test_gamma_must_be_positive_and_the_floor_needs_it():
    with pytest.raises(ValidationError, match="min_snr_gamma"):
        DiffusionConfig(min_snr_gamma=0)
    with pytest.raises(ValidationError, match="min_snr_floor=0.2 needs min_snr_gamma"):
        DiffusionConfig(min_snr_floor=0.2)
    with pytest.raises(ValidationError, match="min_snr_floor"):
        DiffusionConfig(min_snr_gamma=5, min_snr_floor=1.5)
