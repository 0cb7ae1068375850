"""A diffusion stage's videos encoded once: the same latents, the same loss and the same batches as encoding each
batch as it is drawn."""

from pathlib import Path

import pytest
import torch

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.shapes_videos import VideosConfig
from components.data.shapes_world import ShapesConfig
from components.data.video_clips import VideoCaptionDataset
from components.models.builders import build_text_to_video
from components.models.config import DiffusionConfig, DiTConfig, TextEncoderConfig, VideoAutoencoderConfig
from components.models.family import ModelConfig
from components.training.diffusion_losses import denoising_loss, encode_videos
from components.training.encoded_videos import EncodedVideos
from components.training.objectives import OBJECTIVES
from components.training.stage_data import build_dataloader


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> VideoCaptionDataset:
    out: Path = tmp_path_factory.mktemp("videos")
    config = VideosConfig(train=14, val=2, test=2, frames=(1, 5), canvases=((16, 16), (16, 24)), max_shapes=1)
    build_shapes_dataset(ShapesConfig(seed=3, image_size=32, train=10, val=2, test=2), 300, out, videos=config)
    return VideoCaptionDataset(out, "train", load_dataset_tokenizer(out), 24)


def tiny_model(vocab_size: int):
    torch.manual_seed(0)
    cfg = ModelConfig(
        text_encoder=TextEncoderConfig(dim=16, depth=1, heads=2, max_len=24), clip_embed_dim=8,
        video_autoencoder=VideoAutoencoderConfig(hidden=8, groups=4),
        diffusion=DiffusionConfig(dit=DiTConfig(dim=16, depth=2, heads=2)),
    )
    model = build_text_to_video(cfg, vocab_size=vocab_size, pad_id=0)
    model.autoencoder.latent_scale.fill_(1.7)  # as calibrated: the cached latents are the scaled ones
    return model.eval()


def test_each_item_is_its_videos_scaled_latent_and_the_loss_is_unchanged(videos: VideoCaptionDataset):
    model = tiny_model(max(max(c) for c in videos.captions) + 1)
    seen: list[tuple[int, int]] = []
    encoded = EncodedVideos(videos, model.autoencoder, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert len(encoded) == len(videos) and seen[-1] == (len(videos), len(videos))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert encoded.nbytes() == sum(encoded[i]["latent"].numel() * 4 for i in range(len(encoded)))
    for i in (0, 5, len(videos) - 1):
        item, raw = encoded[i], videos[i]
        assert torch.allclose(item["latent"], encode_videos(model, raw["video"][None])[0], atol=1e-5)
        assert torch.equal(item["text_ids"], raw["text_ids"])
        frames, height, width = videos.size(i)
        assert item["latent"].shape == model.autoencoder.latent_shape(frames, height, width) == tuple(item["latent"].shape)

    torch.manual_seed(7)
    from_videos = next(iter(build_dataloader(videos, 4, 0, seed=1)))
    from_latents = next(iter(build_dataloader(encoded, 4, 0, seed=1)))
    assert torch.equal(from_videos["text_ids"], from_latents["text_ids"]), "the same sampler order, the same buckets"
    assert "videos" not in from_latents and from_latents["latents"].shape[0] == from_videos["videos"].shape[0]

    fixed = dict(t=torch.tensor([10, 500, 900, 999])[: len(from_latents["latents"])])
    fixed["noise"] = torch.randn_like(from_latents["latents"])
    fixed["drop"] = torch.zeros(len(fixed["t"]), dtype=torch.bool)
    on_the_fly = denoising_loss(model, encode_videos(model, from_videos["videos"]), from_videos["text_ids"], from_videos["text_mask"], **fixed)
    cached = denoising_loss(model, from_latents["latents"], from_latents["text_ids"], from_latents["text_mask"], **fixed)
    assert torch.allclose(on_the_fly, cached, atol=1e-5)

    torch.manual_seed(3)
    objective_on_videos = OBJECTIVES["diffusion"](model, from_videos)[0]
    torch.manual_seed(3)
    objective_on_latents = OBJECTIVES["diffusion"](model, from_latents)[0]
    assert torch.allclose(objective_on_videos, objective_on_latents, atol=1e-5), "the objective reads either"
