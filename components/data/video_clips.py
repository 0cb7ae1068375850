"""The Shapes videos as training items, and batches of one native size each.

An item is a video (3, T, H, W) in [-1, 1] with its caption's ids (an image is
a one-frame video). Videos keep their duration, height and width: no square
crops (Sora's native sizes). A batch stacks videos of one size, so the
sampler buckets the items by size and draws every batch from one bucket:
shuffled buckets, shuffled within, each size in proportion to its share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from components.data.errors import DataError
from components.data.llava_json import encode_caption
from components.data.paths import InsideResolver
from components.data.tokenizer import TextTokenizer
from components.data.videos_dataset import load_video_frames, read_videos

Size = tuple[int, int, int]
"""(frames, height, width)."""


def video_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> (3, T, H, W) floats in [-1, 1]."""
    return torch.tensor(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0  # a copy: the decoded strip is read-only


def video_frames(video: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> uint8 frames (T, H, W, 3): the inverse of video_tensor, clamped."""
    return ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()


class VideoCaptionDataset(Dataset):
    """The videos of `split` with their captions (descriptive ones after a recaption data stage)."""

    def __init__(self, dataset_dir: Path, split: str, tokenizer: TextTokenizer, max_len: int, single_object: bool = False) -> None:
        """`single_object`: keep only the videos of one object, whose labels name everything in them."""
        samples = read_videos(dataset_dir, split)
        if single_object:
            samples = [s for s in samples if len(s["video_description"]["objects"]) == 1]
        if not samples:
            raise DataError(f"{dataset_dir}: no {split} videos{' of a single object' if single_object else ''}; is data.videos set in the recipe?")
        self.samples = samples
        self.labels: list[dict[str, str]] = [s["labels"] for s in samples]
        self.caption_texts: list[str] = [s["caption"] for s in samples]
        self.resolver = InsideResolver(Path(dataset_dir))
        self.captions = [encode_caption(tokenizer, text, max_len) for text in self.caption_texts]

    def __len__(self) -> int:
        return len(self.samples)

    def size(self, index: int) -> Size:
        s = self.samples[index]
        return s["frames"], s["height"], s["width"]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s = self.samples[index]
        frames = load_video_frames(self.resolver, s["video"], s["frames"], width=s["width"], height=s["height"], source=s["id"])
        return {"video": video_tensor(frames), "text_ids": torch.tensor(self.captions[index], dtype=torch.long)}


class SizeBucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose items share a size; a fresh shuffle on each pass. A bucket's last partial batch
    is kept unless drop_last."""

    def __init__(self, sizes: Sequence[Size], batch_size: int, generator: torch.Generator, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        self.buckets: dict[Size, list[int]] = {}
        for index, size in enumerate(sizes):
            self.buckets.setdefault(tuple(size), []).append(index)
        self.batch_size, self.generator, self.drop_last = batch_size, generator, drop_last

    def _batches(self, count: int) -> int:
        whole, part = divmod(count, self.batch_size)
        return whole + (1 if part and not self.drop_last else 0)

    def __len__(self) -> int:
        return sum(self._batches(len(b)) for b in self.buckets.values())

    def __iter__(self) -> Iterator[list[int]]:
        batches = []
        for indices in self.buckets.values():
            order = torch.randperm(len(indices), generator=self.generator).tolist()
            shuffled = [indices[i] for i in order]
            for start in range(0, len(shuffled), self.batch_size):
                batch = shuffled[start : start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]
