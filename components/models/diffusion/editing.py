"""What a text-to-video model does with images and videos as prompts (Sora's uses), all in its latent space.

  edit         SDEdit: the video's latents noised part-way (`strength` of the schedule) and denoised under a
               new caption; low strength keeps the layout, high strength keeps little
  animate      an image as the first frame of a new clip: its latent frame is kept (the causal autoencoder
               encodes a first frame as the image alone) and the later latent frames are generated
  extend       a clip continued forwards (its latent frames kept at the start) or backwards (at the end)
  interpolate  a clip that starts as one video and ends as another, the latent frames between generated

Kept latent frames are re-noised to each step's level before the step and are exactly the data at the end
(components.models.diffusion.sampling, `fixed`), so the generated frames are denoised in their context.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from components.models.diffusion.sampling import SamplingConfig
from components.models.diffusion.text_to_video import TextToVideo

Direction = Literal["forwards", "backwards"]


def _decode(model: TextToVideo, latents: Tensor) -> Tensor:
    return model.autoencoder.decode(latents).clamp(-1, 1)


def _pixel_size(model: TextToVideo, latent_frames: int, height: int, width: int) -> tuple[int, int, int]:
    return 1 + (latent_frames - 1) * model.autoencoder.cfg.time_downsample, height, width


def _kept(model: TextToVideo, ids: Tensor, mask: Tensor, data: Tensor, keep: Tensor, config: SamplingConfig,
          generator: torch.Generator | None) -> Tensor:
    """Videos whose latent frames where `keep` (T',) is True are `data`'s, the rest generated for the captions."""
    B, _, T, H, W = data.shape
    d = model.autoencoder.cfg.downsample
    fixed_mask = keep.to(data.dtype).view(1, 1, T, 1, 1).expand_as(data)
    latents = model.generate_latents(ids, mask, _pixel_size(model, T, H * d, W * d), config, generator, fixed=(data, fixed_mask))
    return _decode(model, latents)


@torch.no_grad()
def edit(model: TextToVideo, video: Tensor, ids: Tensor, mask: Tensor, strength: float, config: SamplingConfig,
         generator: torch.Generator | None = None) -> Tensor:
    """SDEdit of videos (B, 3, T, H, W) in [-1, 1] under new captions; strength in (0, 1]."""
    latents = model.autoencoder.encode(video)
    start = model.schedule.timestep_for_strength(strength, config.steps)
    out = model.generate_latents(ids, mask, tuple(video.shape[2:]), config, generator, start=latents, start_index=start)
    return _decode(model, out)


@torch.no_grad()
def animate(model: TextToVideo, image: Tensor, ids: Tensor, mask: Tensor, frames: int, config: SamplingConfig,
            generator: torch.Generator | None = None) -> Tensor:
    """Clips of `frames` frames that open on `image` (B, 3, H, W) in [-1, 1]."""
    first = model.autoencoder.encode(image[:, :, None])  # (B, C, 1, h, w)
    latent_frames = model.autoencoder.latent_shape(frames, image.shape[2], image.shape[3])[1]
    data = torch.cat([first, first.expand(-1, -1, latent_frames - 1, -1, -1)], dim=2)
    keep = torch.zeros(latent_frames, dtype=torch.bool)
    keep[0] = True
    return _kept(model, ids, mask, data, keep, config, generator)


@torch.no_grad()
def extend(model: TextToVideo, video: Tensor, ids: Tensor, mask: Tensor, extra_frames: int, direction: Direction,
           config: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """The videos continued by `extra_frames` frames (a multiple of the time compression) forwards or backwards."""
    r = model.autoencoder.cfg.time_downsample
    if extra_frames < r or extra_frames % r:
        raise ValueError(f"extra_frames={extra_frames}: a clip grows by whole latent frames (allowed: multiples of {r})")
    latents = model.autoencoder.encode(video)
    extra = extra_frames // r
    blank = torch.zeros_like(latents[:, :, :1]).expand(-1, -1, extra, -1, -1)
    data = torch.cat([latents, blank] if direction == "forwards" else [blank, latents], dim=2)
    keep = torch.zeros(data.shape[2], dtype=torch.bool)
    if direction == "forwards":
        keep[: latents.shape[2]] = True
    else:
        keep[extra:] = True
    return _kept(model, ids, mask, data, keep, config, generator)


@torch.no_grad()
def interpolate(model: TextToVideo, start: Tensor, end: Tensor, ids: Tensor, mask: Tensor, between_frames: int,
                config: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """Clips that begin as `start` and end as `end` (videos of one size), `between_frames` generated frames between."""
    if start.shape != end.shape:
        raise ValueError(f"interpolate joins videos of one size; got {tuple(start.shape)} and {tuple(end.shape)}")
    r = model.autoencoder.cfg.time_downsample
    if between_frames < r or between_frames % r:
        raise ValueError(f"between_frames={between_frames}: allowed: multiples of {r} (whole latent frames)")
    a, b = model.autoencoder.encode(start), model.autoencoder.encode(end)
    between = torch.zeros_like(a[:, :, :1]).expand(-1, -1, between_frames // r, -1, -1)
    data = torch.cat([a, between, b], dim=2)
    keep = torch.ones(data.shape[2], dtype=torch.bool)
    keep[a.shape[2] : a.shape[2] + between.shape[2]] = False
    return _kept(model, ids, mask, data, keep, config, generator)
