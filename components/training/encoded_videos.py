"""A diffusion stage's videos as the frozen autoencoder's latents, encoded once before training.

While the autoencoder is frozen, a video's scaled latent (the posterior mean,
see VideoAutoencoder.encode) is the same at every step, so encoding it again
each time it is drawn is wasted work: on 2 CPU cores it was about a third of
a video_dit denoise step, with the strips' PNG decoding on top. The latents
are about a twelfth of the videos' bytes (4 channels at a quarter of the
side and half the frames, against 3 at full size), held in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from components.data.video_clips import Size, VideoCaptionDataset
from components.models.diffusion.autoencoder import VideoAutoencoder


class EncodedVideos(Dataset):
    """Items {"latent": (C, T', H', W'), "text_ids"} in the order of `videos`, whose sizes they keep, so the same
    size buckets batch them."""

    def __init__(
        self, videos: VideoCaptionDataset, autoencoder: VideoAutoencoder, batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """`progress(done, total)` after each encoded batch."""
        self.videos = videos
        self.latents: list[Tensor | None] = [None] * len(videos)
        by_size: dict[Size, list[int]] = {}
        for index in range(len(videos)):
            by_size.setdefault(videos.size(index), []).append(index)
        done, was_training = 0, autoencoder.training
        autoencoder.eval()
        with torch.no_grad():
            for indices in by_size.values():
                for start in range(0, len(indices), batch_size):
                    chunk = indices[start : start + batch_size]
                    latents = autoencoder.encode(torch.stack([videos[i]["video"] for i in chunk]))
                    for i, latent in zip(chunk, latents):
                        self.latents[i] = latent.clone()  # its own storage, not a view that keeps the batch alive
                    done += len(chunk)
                    if progress is not None:
                        progress(done, len(videos))
        autoencoder.train(was_training)

    def __len__(self) -> int:
        return len(self.latents)

    def size(self, index: int) -> Size:
        return self.videos.size(index)

    def nbytes(self) -> int:
        return sum(latent.numel() * latent.element_size() for latent in self.latents)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"latent": self.latents[index], "text_ids": torch.tensor(self.videos.captions[index], dtype=torch.long)}
