"""The text-to-video model: a frozen text tower, the video compression network and the diffusion transformer.

The caption is read by a CLIP text tower (`text` and `text_projection`, the
parts of a contrastive model, so a registered CLIP initialises them): its
normalised embedding is the pooled condition and its token states the
cross-attended one. The transformer denoises the autoencoder's scaled
latents; `generate` samples latents of the size asked for (the grid of noise
is the output's size) and decodes them to pixels. An image is a one-frame
video throughout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.config import DiffusionConfig
from components.models.diffusion.autoencoder import VideoAutoencoder
from components.models.diffusion.dit import Caption, DiffusionTransformer
from components.models.diffusion.sampling import Denoiser, SamplingConfig, guidance_window, guided, sample
from components.models.diffusion.schedule import NoiseSchedule
from components.models.text_encoder import TextEncoder


class TextToVideo(nn.Module):
    def __init__(self, cfg: DiffusionConfig, autoencoder: VideoAutoencoder, text: TextEncoder, text_projection: nn.Linear) -> None:
        super().__init__()
        self.cfg = cfg
        self.autoencoder = autoencoder
        self.text = text
        self.text_projection = text_projection
        self.dit = DiffusionTransformer(cfg.dit, autoencoder.cfg.latent_channels, text_projection.out_features, text.cfg.dim)
        self.schedule = NoiseSchedule(cfg.schedule)

    @property
    def max_text_len(self) -> int:
        return self.text.cfg.max_len

    def caption(self, ids: Tensor, mask: Tensor) -> Caption:
        """The caption's conditions as the text tower reads them. Gradients reach the tower only where the stage's
        freeze plan trains it (`trainable: [dit, text]`); frozen, as registered, it builds no graph at all."""
        tokens = self.text.tokens(ids, mask)
        pooled = F.normalize(self.text_projection(self.text.pool(tokens, mask)), dim=-1)  # CLIP's text embedding
        return Caption(pooled, tokens, mask.bool())

    def denoiser(self, caption: Caption, config: SamplingConfig) -> Denoiser:
        """The guided denoiser of one batch of captions: conditional, and unconditional with the caption dropped,
        mixed at config.guidance within config.guidance_interval."""
        drop_all = torch.ones(len(caption.pooled), dtype=torch.bool)
        cond = lambda x, t: self.dit(x, t, caption)  # noqa: E731
        uncond = lambda x, t: self.dit(x, t, caption, drop=drop_all)  # noqa: E731
        return guided(cond, uncond, config.guidance, guidance_window(self.schedule, config.guidance_interval))

    @torch.no_grad()
    def generate_latents(
        self, ids: Tensor, mask: Tensor, size: tuple[int, int, int], config: SamplingConfig, generator: torch.Generator | None = None,
        start: Tensor | None = None, start_index: int = 0, fixed: tuple[Tensor, Tensor] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """Latents (B, C, T', H', W') of videos of `size` (frames, height, width) in pixels for the captions."""
        shape = (len(ids), *self.autoencoder.latent_shape(*size))
        return sample(self.denoiser(self.caption(ids, mask), config), self.schedule, shape, self.cfg.prediction, config,
                      generator, start, start_index, fixed, progress)

    @torch.no_grad()
    def generate(
        self, ids: Tensor, mask: Tensor, size: tuple[int, int, int], config: SamplingConfig, generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """Videos (B, 3, T, H, W) in [-1, 1] of `size` (frames, height, width) for the captions."""
        latents = self.generate_latents(ids, mask, size, config, generator, progress=progress)
        return self.autoencoder.decode(latents).clamp(-1, 1)
