"""A vector-quantised image tokenizer (VQ-VAE, van den Oord et al. 2017): OFA's image codes.

The encoder halves the image log2(downsample) times with stride-2 convolutions; each cell of the latent grid
is replaced by its nearest code vector (straight-through gradient to the encoder); the decoder mirrors the
encoder with transposed convolutions. Loss: reconstruction MSE + codebook loss + beta x commitment loss.
Latents and codes are unit vectors (l2-normalised, as ViT-VQGAN's codebook): nearest is most similar, and
no loss can grow without bound while the codes chase the encoder (unnormalised, the encoder's outputs ran
away from the codebook within 40 steps and two codes of 256 were used).
The codebook starts from the first batch's encoder outputs, so that no code starts far from the data, and
every RESTART_EVERY training steps the codes no cell chose since the last restart are moved onto encoder
outputs of the batch (dead-code restart): Shapes scenes are mostly background, and without restarts the
codebook collapsed to two to four codes within 50 steps (reconstruction stuck at the background's error).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.config import VqConfig

RESTART_EVERY = 25


def _down(channels_in: int, channels_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 4, stride=2, padding=1), nn.GELU())


def _up(channels_in: int, channels_out: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(channels_in, channels_out, 4, stride=2, padding=1), nn.GELU())


class VqTokenizer(nn.Module):
    def __init__(self, cfg: VqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        steps = int(math.log2(cfg.downsample))
        widths = [3] + [cfg.hidden] * steps
        self.encoder = nn.Sequential(*[_down(a, b) for a, b in zip(widths[:-1], widths[1:])], nn.Conv2d(cfg.hidden, cfg.code_dim, 1))
        self.codebook = nn.Embedding(cfg.codebook_size, cfg.code_dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(cfg.code_dim, cfg.hidden, 3, padding=1), nn.GELU(),
            *[_up(cfg.hidden, cfg.hidden) for _ in range(steps - 1)],
            nn.ConvTranspose2d(cfg.hidden, 3, 4, stride=2, padding=1),
        )
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("uses", torch.zeros(cfg.codebook_size))
        self.register_buffer("steps", torch.tensor(0))

    def encode_latents(self, pixel_values: Tensor) -> Tensor:
        """(B, 3, S, S) pixels in [-1, 1] -> unit vectors (B, code_dim, S / downsample, S / downsample)."""
        return F.normalize(self.encoder(pixel_values), dim=1)

    def code_vectors(self) -> Tensor:
        """The codebook as unit vectors (codebook_size, code_dim)."""
        return F.normalize(self.codebook.weight, dim=1)

    def nearest_codes(self, latents: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, h, w) indices of the nearest code vectors."""
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        B, _, h, w = latents.shape
        return (flat @ self.code_vectors().t()).argmax(1).view(B, h, w)  # unit vectors: the nearest is the most similar

    @torch.no_grad()
    def encode(self, pixel_values: Tensor) -> Tensor:
        """Pixels -> image codes (B, h, w)."""
        return self.nearest_codes(self.encode_latents(pixel_values))

    def decode(self, codes: Tensor) -> Tensor:
        """Image codes (B, h, w) -> pixels (B, 3, S, S), in [-1, 1] where training put them."""
        return self.decoder(F.embedding(codes, self.code_vectors()).permute(0, 3, 1, 2))

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Reconstruction and losses: `loss` (the sum to train), `reconstruction`, `codebook`, `commitment`,
        and `code_usage`, the fraction of the codebook this batch used."""
        latents = self.encode_latents(pixel_values)
        if self.training and not bool(self.initialised):
            self._initialise(latents)
        codes = self.nearest_codes(latents)
        if self.training:
            self._restart_dead_codes(latents, codes)
        quantised = F.embedding(codes, self.code_vectors()).permute(0, 3, 1, 2)
        codebook = F.mse_loss(quantised, latents.detach())
        commitment = F.mse_loss(latents, quantised.detach())
        straight_through = latents + (quantised - latents).detach()
        reconstruction = self.decoder(straight_through)
        recon = F.mse_loss(reconstruction, pixel_values)
        losses = {
            "loss": recon + codebook + self.cfg.beta * commitment,
            "reconstruction": recon.detach(), "codebook": codebook.detach(), "commitment": commitment.detach(),
            "code_usage": torch.tensor(codes.unique().numel() / self.cfg.codebook_size),
        }
        return reconstruction, losses

    @torch.no_grad()
    def _restart_dead_codes(self, latents: Tensor, codes: Tensor) -> None:
        self.uses += torch.bincount(codes.flatten(), minlength=self.cfg.codebook_size).to(self.uses.dtype)
        self.steps += 1
        if int(self.steps) % RESTART_EVERY:
            return
        dead = (self.uses == 0).nonzero().flatten()
        if len(dead):
            flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
            self.codebook.weight[dead] = flat[torch.randint(0, len(flat), (len(dead),), device=flat.device)]
        self.uses.zero_()

    @torch.no_grad()
    def _initialise(self, latents: Tensor) -> None:
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        picks = torch.randint(0, len(flat), (self.cfg.codebook_size,), generator=torch.Generator().manual_seed(0))
        self.codebook.weight.copy_(flat[picks] + 1e-3 * torch.randn_like(flat[picks]))
        self.initialised.fill_(True)
