"""The causal video autoencoder: sizes, causality in time, images as one-frame videos, and that it learns."""

import pytest
import torch

from components.models.config import VideoAutoencoderConfig
from components.models.diffusion.autoencoder import VideoAutoencoder

CFG = VideoAutoencoderConfig(hidden=8, groups=4, downsample=4, time_downsample=2)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return VideoAutoencoder(CFG).eval()


def test_latents_compress_space_and_time_at_any_native_size(model):
    for frames, height, width in ((1, 16, 16), (5, 16, 24), (9, 24, 16)):
        video = torch.rand(2, 3, frames, height, width) * 2 - 1
        latents = model.encode(video)
        assert latents.shape[1:] == model.latent_shape(frames, height, width) == (4, 1 + (frames - 1) // 2, height // 4, width // 4)
        assert model.decode(latents).shape == video.shape


def test_no_latent_frame_reads_a_later_frame_and_an_image_is_the_first_frame(model):
    torch.manual_seed(1)
    video = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    changed = video.clone()
    changed[:, :, 5] = -changed[:, :, 5]  # frame 5 lies in latent frame 3 (frames 5 and 6)
    with torch.no_grad():
        before, after = model.encode(video), model.encode(changed)
        image = model.encode(video[:, :, :1])
    differs = [(after[:, :, i] - before[:, :, i]).abs().max().item() > 0 for i in range(5)]
    assert differs == [False, False, False, True, True]
    torch.testing.assert_close(image[:, :, 0], before[:, :, 0])


def test_latent_scale_divides_out_on_decoding(model):
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        plain_latents, plain = model.encode(video), model.decode(model.encode(video))
        model.latent_scale.fill_(0.25)
        scaled_latents, scaled = model.encode(video), model.decode(model.encode(video))
    torch.testing.assert_close(scaled_latents, plain_latents * 0.25)
    torch.testing.assert_close(scaled, plain)


def test_shapes_it_cannot_compress_are_refused(model):
    with pytest.raises(ValueError, match=r"\(B, 3, 1 \+ k \* 2, H, W\) with H and W multiples of 4"):
        model.encode(torch.zeros(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        model.encode(torch.zeros(1, 3, 1, 18, 16))
    with pytest.raises(ValueError, match="groups=3 must divide hidden=8"):
        VideoAutoencoderConfig(hidden=8, groups=3)


def test_it_learns_to_reconstruct_a_few_videos():
    torch.manual_seed(2)
    model = VideoAutoencoder(CFG)
    videos = torch.zeros(2, 3, 5, 16, 16) - 1
    videos[0, 0, :, 4:10, 4:10] = 1  # a red square, still
    for t in range(5):
        videos[1, 2, t, 8:12, 2 + 2 * t : 6 + 2 * t] = 1  # a blue bar moving right
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.losses(videos)["reconstruction"].item()
    for _ in range(60):
        losses = model.losses(videos)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    assert set(losses) == {"reconstruction", "kl", "loss"}
    assert losses["reconstruction"].item() < 0.3 * first
