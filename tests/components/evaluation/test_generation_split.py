"""generation_metrics measures the split it is given: the pipeline reads test, sampling settings are chosen on val."""

from pathlib import Path

import torch

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.shapes_videos import VideosConfig
from components.data.shapes_world import ShapesConfig
from components.data.video_clips import VideoCaptionDataset
from components.evaluation.generation_eval import generation_metrics
from components.models.builders import build_text_to_video
from components.models.config import DiffusionConfig, DiTConfig, TextEncoderConfig, VideoAutoencoderConfig
from components.models.diffusion.sampling import SamplingConfig
from components.models.family import ModelConfig


def test_generation_metrics_reads_the_captions_of_the_split_asked_for(tmp_path: Path):
    videos = VideosConfig(train=16, val=3, test=5, frames=(1,), canvases=((32, 32),), max_shapes=1)
    build_shapes_dataset(ShapesConfig(seed=1, image_size=32, train=4, val=2, test=2), 300, tmp_path, videos=videos)
    tokenizer = load_dataset_tokenizer(tmp_path)
    cfg = ModelConfig(
        text_encoder=TextEncoderConfig(dim=16, depth=1, heads=2, max_len=24), clip_embed_dim=8,
        video_autoencoder=VideoAutoencoderConfig(hidden=8, groups=4),
        diffusion=DiffusionConfig(dit=DiTConfig(dim=16, depth=1, heads=2)),
    )
    torch.manual_seed(0)
    model = build_text_to_video(cfg, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id).eval()
    measured = {}
    for split in ("val", "test"):
        metrics, _, records = generation_metrics(
            model, tokenizer, tmp_path, (1.0,), SamplingConfig(steps=2), limit=10, judge_steps=2, batch_size=8, seed=0,
            previews=0, split=split,
        )
        wanted = VideoCaptionDataset(tmp_path, split, tokenizer, 24, single_object=True).caption_texts
        assert [r["caption"] for r in records] == wanted
        measured[split] = metrics["generation_items"]
    assert measured == {"val": 3.0, "test": 5.0}
