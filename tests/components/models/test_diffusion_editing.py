"""Images and videos as prompts: SDEdit, animating an image, extending and interpolating clips."""

import pytest
import torch

from components.models.builders import build_text_to_video
from components.models.config import DiffusionConfig, DiTConfig, TextEncoderConfig, VideoAutoencoderConfig
from components.models.diffusion.editing import animate, edit, extend, interpolate
from components.models.diffusion.sampling import SamplingConfig
from components.models.family import ModelConfig

CONFIG = SamplingConfig(sampler="ddim", steps=4, guidance=2.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = ModelConfig(
        text_encoder=TextEncoderConfig(dim=16, depth=1, heads=2, max_len=16), clip_embed_dim=8,
        video_autoencoder=VideoAutoencoderConfig(hidden=8, groups=4),
        diffusion=DiffusionConfig(dit=DiTConfig(dim=16, depth=2, heads=2, attention="factorised")),
    )
    model = build_text_to_video(cfg, vocab_size=40, pad_id=0).eval()
    with torch.no_grad():  # a transformer that predicts something, not adaLN-Zero's zeros
        for name, p in model.dit.named_parameters():
            if "modulation" in name or name.startswith("final"):
                p.normal_(0, 0.05)
    return model


def caption(batch: int = 2):
    return torch.randint(1, 40, (batch, 5)), torch.ones(batch, 5, dtype=torch.long)


def video(frames: int, height: int = 16, width: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, frames, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_an_edit_keeps_more_of_the_video_the_less_it_noises(model):
    source = video(5)
    recon = model.autoencoder.decode(model.autoencoder.encode(source)).clamp(-1, 1)
    light = edit(model, source, *caption(), strength=0.25, config=CONFIG, generator=torch.Generator().manual_seed(2))
    heavy = edit(model, source, *caption(), strength=1.0, config=CONFIG, generator=torch.Generator().manual_seed(2))
    assert light.shape == heavy.shape == source.shape
    assert (light - recon).abs().mean() < (heavy - recon).abs().mean()
    with pytest.raises(ValueError, match="strength=0 must lie in"):
        edit(model, source, *caption(), strength=0, config=CONFIG)


def test_an_animated_image_opens_on_the_image_and_an_extended_clip_keeps_its_frames(model):
    image = video(1)[:, :, 0]
    clip = animate(model, image, *caption(), frames=5, config=CONFIG, generator=torch.Generator().manual_seed(3))
    assert clip.shape == (2, 3, 5, 16, 16)
    first = model.autoencoder.decode(model.autoencoder.encode(image[:, :, None])).clamp(-1, 1)
    torch.testing.assert_close(clip[:, :, 0], first[:, :, 0])  # the causal decoder: frame 0 reads latent frame 0 alone
    assert not torch.allclose(clip[:, :, 4], clip[:, :, 0])

    source = video(5)
    longer = extend(model, source, *caption(), extra_frames=4, direction="forwards", config=CONFIG)
    assert longer.shape == (2, 3, 9, 16, 16)
    torch.testing.assert_close(longer[:, :, :5], model.autoencoder.decode(model.autoencoder.encode(source)).clamp(-1, 1))
    assert extend(model, source, *caption(), extra_frames=2, direction="backwards", config=CONFIG).shape == (2, 3, 7, 16, 16)
    with pytest.raises(ValueError, match="extra_frames=3: a clip grows by whole latent frames"):
        extend(model, source, *caption(), extra_frames=3, direction="forwards", config=CONFIG)


def test_an_interpolation_starts_as_one_video(model):
    a, b = video(5, seed=4), video(5, seed=5)
    joined = interpolate(model, a, b, *caption(), between_frames=4, config=CONFIG)
    assert joined.shape == (2, 3, 5 + 4 + 6, 16, 16)  # a's 3 latent frames, 2 between, b's 3: 1 + 7 * 2 frames
    torch.testing.assert_close(joined[:, :, :5], model.autoencoder.decode(model.autoencoder.encode(a)).clamp(-1, 1))
    with pytest.raises(ValueError, match="joins videos of one size"):
        interpolate(model, a, video(5, width=24), *caption(), between_frames=2, config=CONFIG)
