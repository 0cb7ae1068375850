"""The noise schedule and the DDPM / DDIM steps against diffusers' DDPMScheduler and DDIMScheduler."""

import pytest
import torch
from pydantic import ValidationError

from components.models.diffusion.sampling import SamplingConfig, ddim_step, ddpm_step, guidance_window, guided, sample
from components.models.diffusion.schedule import NoiseSchedule, NoiseScheduleConfig

diffusers = pytest.importorskip("diffusers")

KINDS = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2"}
PREDICTIONS = {"epsilon": "epsilon", "v": "v_prediction"}


def pair(kind: str, prediction: str = "epsilon", scheduler=None):
    ours = NoiseSchedule(NoiseScheduleConfig(kind=kind, beta_start=1e-4, beta_end=0.02))
    theirs = (scheduler or diffusers.DDPMScheduler)(
        num_train_timesteps=1000, beta_schedule=KINDS[kind], beta_start=1e-4, beta_end=0.02,
        prediction_type=PREDICTIONS[prediction], clip_sample=False,
    )
    return ours, theirs


@pytest.mark.parametrize("kind", KINDS)
def test_alpha_bar_add_noise_and_velocity_match_diffusers(kind):
    ours, theirs = pair(kind)
    torch.testing.assert_close(ours.alphas_cumprod, theirs.alphas_cumprod, atol=1e-6, rtol=1e-5)
    torch.manual_seed(0)
    x0, noise = torch.randn(5, 2, 3, 4, 4), torch.randn(5, 2, 3, 4, 4)  # a batch of (C, T, H, W) latents
    t = torch.tensor([0, 1, 250, 700, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), theirs.add_noise(x0, noise, t))
    torch.testing.assert_close(ours.velocity(x0, noise, t), theirs.get_velocity(x0, noise, t))


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("num_steps", [1000, 50])
def test_ddpm_steps_match_diffusers(prediction, num_steps):
    ours, theirs = pair("linear", prediction)
    theirs.set_timesteps(num_steps)
    timesteps = ours.timesteps(num_steps)
    assert timesteps.tolist() == theirs.timesteps.tolist()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 8)
    for i, t in enumerate(timesteps.tolist()[:3] + timesteps.tolist()[-2:]):
        output = torch.randn_like(x) * 0.5 + 0.1 * x
        expected = theirs.step(output, t, x, generator=torch.Generator().manual_seed(i)).prev_sample
        prev = t - 1000 // num_steps
        x0, _ = ours.split(x, output, torch.full((2,), t), prediction)
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(i)) if prev >= 0 else None
        # diffusers forms beta = 1 - a_t / a_prev in float32, which near t = 0 (beta 1e-4) is off by 3e-4 of itself
        torch.testing.assert_close(ddpm_step(ours, x, x0, t, prev, noise), expected, atol=3e-4, rtol=1e-4)


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_steps_match_diffusers(prediction, eta):
    ours, theirs = pair("scaled_linear", prediction, diffusers.DDIMScheduler)
    theirs.set_timesteps(20)
    assert ours.timesteps(20).tolist() == theirs.timesteps.tolist()
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 8)
    for t in theirs.timesteps.tolist():
        output = torch.randn_like(x) * 0.5 + 0.1 * x
        noise = torch.randn_like(x)
        expected = theirs.step(output, t, x, eta=eta, variance_noise=noise).prev_sample
        x0, eps = ours.split(x, output, torch.full((2,), t), prediction)
        got = ddim_step(ours, x0, eps, t, t - 50, eta, noise)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        x = expected


def test_split_inverts_noising_for_both_predictions():
    schedule = NoiseSchedule(NoiseScheduleConfig(kind="cosine"))
    torch.manual_seed(3)
    x0, noise, t = torch.randn(4, 6), torch.randn(4, 6), torch.tensor([3, 100, 500, 990])
    x_t = schedule.add_noise(x0, noise, t)
    for prediction in ("epsilon", "v"):
        got_x0, got_noise = schedule.split(x_t, schedule.target(x0, noise, t, prediction), t, prediction)
        torch.testing.assert_close(got_x0, x0, atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(got_noise, noise, atol=1e-4, rtol=1e-4)


def test_an_exact_denoiser_samples_its_data_and_guidance_mixes_outputs():
    """With the true x0 known, the denoiser's output is exact: DDIM with eta 0 lands on the data, from pure noise
    or from the data part-noised (SDEdit); kept parts stay the data."""
    schedule = NoiseSchedule()
    torch.manual_seed(4)
    data = torch.rand(2, 3, 4, 4) * 2 - 1

    def exact(x, t):  # the noise that makes x from data
        a = schedule.alpha_bar(t, x)
        return (x - a.sqrt() * data) / (1 - a).sqrt()

    config = SamplingConfig(sampler="ddim", steps=10)
    torch.testing.assert_close(sample(exact, schedule, data.shape, "epsilon", config), data, atol=1e-4, rtol=1e-4)
    edited = sample(exact, schedule, data.shape, "epsilon", config, start=data, start_index=6)
    torch.testing.assert_close(edited, data, atol=1e-4, rtol=1e-4)
    mask = torch.zeros_like(data)
    mask[:, :, :2] = 1
    kept = sample(lambda x, t: torch.zeros_like(x), schedule, data.shape, "epsilon", config, fixed=(data, mask))
    assert torch.equal(kept[:, :, :2], data[:, :, :2]) and not torch.allclose(kept[:, :, 2:], data[:, :, 2:])

    cond, uncond = (lambda x, t: torch.ones_like(x)), (lambda x, t: torch.zeros_like(x))
    x, t = torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)
    assert guided(cond, uncond, 3.0)(x, t).tolist() == [[3.0, 3.0]]
    assert guided(cond, None, 1.0) is cond
    with pytest.raises(ValueError, match="needs the unconditional denoiser"):
        guided(cond, None, 2.0)


def test_guidance_within_an_interval_of_noise_levels_skips_the_unconditional_pass_outside_it():
    schedule = NoiseSchedule(NoiseScheduleConfig(kind="linear", steps=1000))
    unconditional_calls: list[int] = []

    def uncond(x, t):
        unconditional_calls.append(int(t[0]))
        return torch.zeros_like(x)

    window = guidance_window(schedule, (0.28, 5.42))
    denoiser = guided(lambda x, t: torch.ones_like(x), uncond, 3.0, window)
    x = torch.zeros(2, 3)
    outputs = {t: denoiser(x, torch.full((2,), t)) for t in schedule.timesteps(50).tolist()}
    sigma = ((1 - schedule.alphas_cumprod) / schedule.alphas_cumprod).sqrt()
    inside = [t for t in outputs if 0.28 < sigma[t] <= 5.42]
    assert unconditional_calls == inside and (min(inside), max(inside)) == (100, 560)  # of the visited; all of 82..578 lie inside
    for t, out in outputs.items():
        assert out.unique().tolist() == ([3.0] if t in inside else [1.0]), t
    assert guidance_window(schedule, None) is None
    with pytest.raises(ValidationError, match=r"guidance_interval \[5.0, 1.0\]: give \[low, high\]"):
        SamplingConfig(guidance=3.0, guidance_interval=(5.0, 1.0))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="beta_start"):
        NoiseScheduleConfig(beta_start=0.03, beta_end=0.02)
    with pytest.raises(ValueError, match="num_steps=0 must lie in 1..1000"):
        NoiseSchedule().timesteps(0)
    with pytest.raises(ValueError, match="timesteps must lie in 0..999"):
        NoiseSchedule().add_noise(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([1000]))
