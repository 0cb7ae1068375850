"""Videos as training items at their native sizes, batched one size at a time."""

from pathlib import Path

import numpy as np
import pytest
import torch

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.errors import DataError
from components.data.llava_json import collate_batch
from components.data.shapes_videos import VideosConfig
from components.data.shapes_world import ShapesConfig
from components.data.video_clips import SizeBucketBatchSampler, VideoCaptionDataset, video_frames, video_tensor
from components.training.stage_data import build_dataloader, build_stage_dataset


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("videos")
    videos = VideosConfig(train=30, val=2, test=6, frames=(1, 5), canvases=((32, 32), (32, 48)), max_shapes=2)
    build_shapes_dataset(ShapesConfig(seed=2, image_size=32, train=20, val=2, test=2), 300, out, videos=videos)
    return out


def test_items_keep_their_size_and_pixels_round_trip(dataset_dir: Path):
    tokenizer = load_dataset_tokenizer(dataset_dir)
    data = VideoCaptionDataset(dataset_dir, "train", tokenizer, 24)
    sizes = {data.size(i) for i in range(len(data))}
    assert sizes <= {(1, 32, 32), (1, 32, 48), (5, 32, 32), (5, 32, 48)} and len(sizes) > 2
    for i in range(4):
        item = data[i]
        frames, height, width = data.size(i)
        assert item["video"].shape == (3, frames, height, width) and item["video"].min() >= -1 and item["video"].max() <= 1
        assert item["text_ids"][-1] == tokenizer.eos_id and len(item["text_ids"]) <= 24
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(video_frames(video_tensor(frames)), frames)


def test_single_object_videos_are_what_their_labels_name(dataset_dir: Path):
    tokenizer = load_dataset_tokenizer(dataset_dir)
    everything = VideoCaptionDataset(dataset_dir, "train", tokenizer, 24)
    single = VideoCaptionDataset(dataset_dir, "train", tokenizer, 24, single_object=True)
    assert 0 < len(single) < len(everything)
    assert all(len(s["video_description"]["objects"]) == 1 for s in single.samples)
    assert single.labels[0] == single.samples[0]["labels"]


def test_every_batch_is_one_size_and_every_item_is_seen_once_a_pass(dataset_dir: Path):
    sizes = [(1, 32, 32)] * 5 + [(5, 32, 48)] * 7 + [(1, 32, 48)] * 2
    sampler = SizeBucketBatchSampler(sizes, 3, torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 + 3 + 1
    assert all(len({sizes[i] for i in batch}) == 1 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == list(range(14))
    assert batches != list(SizeBucketBatchSampler(sizes, 3, torch.Generator().manual_seed(1)))  # shuffled by the seed
    assert len(SizeBucketBatchSampler(sizes, 3, torch.Generator(), drop_last=True)) == 1 + 2 + 0

    tokenizer = load_dataset_tokenizer(dataset_dir)
    loader = build_dataloader(build_stage_dataset("diffusion", dataset_dir, tokenizer, 32, 24), 4, tokenizer.pad_id, seed=0)
    for batch in loader:
        assert batch["videos"].dim() == 5 and batch["text_ids"].shape == batch["text_mask"].shape


def test_videos_of_two_sizes_do_not_stack_and_no_videos_is_a_clear_error(dataset_dir: Path, tmp_path: Path):
    with pytest.raises(DataError, match="the videos of one batch must share a size"):
        collate_batch([{"video": torch.zeros(3, 1, 32, 32)}, {"video": torch.zeros(3, 1, 32, 48)}], 0)
    tokenizer = load_dataset_tokenizer(dataset_dir)
    build_shapes_dataset(ShapesConfig(seed=2, image_size=32, train=4, val=2, test=2), 300, tmp_path)
    with pytest.raises(DataError, match="videos_train.json"):
        VideoCaptionDataset(tmp_path, "train", tokenizer, 24)
