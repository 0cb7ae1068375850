"""The video compression network: a causal 3D-convolutional variational autoencoder.

Videos are (B, 3, T, H, W) in [-1, 1]. The convolutions are factorised, (2+1)D:
2D within each frame, and 1D along time, causal, padding the past with copies
of the first frame, so no frame's latent reads a later frame and the first
frame is encoded as an image would be (MAGVIT-v2's and CogVideoX's causal
VAEs); normalisation is per frame for the same reason. Time is compressed by
one strided causal convolution: frames 1 + k * r become latent frames 1 + k;
space by `levels` stride-2 halvings. The decoder mirrors it, growing each later
latent frame back into r frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.config import VideoAutoencoderConfig


def per_frame(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a 2D module to every frame of x (B, C, T, H, W)."""
    B, C, T, H, W = x.shape
    out = module(x.transpose(1, 2).reshape(B * T, C, H, W))
    return out.reshape(B, T, *out.shape[1:]).transpose(1, 2)


class FrameConv(nn.Module):
    """A 2D convolution of every frame on its own ('same' padding; stride 2 halves the frame)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return per_frame(self.conv, x)


class FrameNorm(nn.Module):
    """Group normalisation over each frame alone: statistics over the whole clip would let later frames
    change earlier frames' latents."""

    def __init__(self, groups: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)

    def forward(self, x: Tensor) -> Tensor:
        return per_frame(self.norm, x)


class CausalTimeConv(nn.Module):
    """A convolution along time only, padded with copies of the first frame so that no output reads a later
    frame; stride r keeps the first frame and every r-th after it."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv3d(in_ch, out_ch, (kernel, 1, 1), stride=(stride, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        past = x[:, :, :1].expand(-1, -1, self.kernel - 1, -1, -1)
        return self.conv(torch.cat([past, x], dim=2))


class ResBlock(nn.Module):
    """A (2+1)D residual block: a frame convolution, a causal time convolution, a frame convolution."""

    def __init__(self, in_ch: int, out_ch: int, groups: int) -> None:
        super().__init__()
        self.norm1 = FrameNorm(groups, in_ch)
        self.conv1 = FrameConv(in_ch, out_ch)
        self.time = CausalTimeConv(out_ch, out_ch)
        self.norm2 = FrameNorm(groups, out_ch)
        self.conv2 = FrameConv(out_ch, out_ch)
        self.skip = FrameConv(in_ch, out_ch, kernel=1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.time(self.conv1(F.silu(self.norm1(x))))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


def _widths(cfg: VideoAutoencoderConfig) -> list[int]:
    return [cfg.hidden * 2**i for i in range(cfg.levels + 1)]


class Encoder(nn.Module):
    def __init__(self, cfg: VideoAutoencoderConfig) -> None:
        super().__init__()
        widths = _widths(cfg)
        self.conv_in = FrameConv(3, widths[0])
        layers: list[nn.Module] = []
        for i in range(cfg.levels):
            layers += [ResBlock(widths[i], widths[i + 1], cfg.groups), FrameConv(widths[i + 1], widths[i + 1], stride=2)]
        self.down = nn.Sequential(*layers)
        r = cfg.time_downsample
        self.time_down = CausalTimeConv(widths[-1], widths[-1], kernel=r, stride=r) if r > 1 else nn.Identity()
        self.mid = ResBlock(widths[-1], widths[-1], cfg.groups)
        self.norm_out = FrameNorm(cfg.groups, widths[-1])
        self.conv_out = FrameConv(widths[-1], 2 * cfg.latent_channels)

    def forward(self, x: Tensor) -> Tensor:
        h = self.mid(self.time_down(self.down(self.conv_in(x))))
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 2 * latent, T', H', W'): mean and log-variance


class TimeUpsample(nn.Module):
    """Latent frames 1 + k -> frames 1 + k * r: each frame grows into r, of which the first frame keeps its last."""

    def __init__(self, channels: int, r: int) -> None:
        super().__init__()
        self.r = r
        self.conv = CausalTimeConv(channels, channels * r)

    def forward(self, x: Tensor) -> Tensor:
        B, C, T, H, W = x.shape
        h = self.conv(x).reshape(B, C, self.r, T, H, W).permute(0, 1, 3, 2, 4, 5).reshape(B, C, T * self.r, H, W)
        return h[:, :, self.r - 1 :]


class Decoder(nn.Module):
    def __init__(self, cfg: VideoAutoencoderConfig) -> None:
        super().__init__()
        widths = _widths(cfg)[::-1]
        self.conv_in = FrameConv(cfg.latent_channels, widths[0])
        self.mid = ResBlock(widths[0], widths[0], cfg.groups)
        self.time_up = TimeUpsample(widths[0], cfg.time_downsample) if cfg.time_downsample > 1 else nn.Identity()
        self.ups = nn.ModuleList(ResBlock(widths[i], widths[i + 1], cfg.groups) for i in range(cfg.levels))
        self.up_convs = nn.ModuleList(FrameConv(widths[i + 1], widths[i + 1]) for i in range(cfg.levels))
        self.norm_out = FrameNorm(cfg.groups, widths[-1])
        self.conv_out = FrameConv(widths[-1], 3)

    def forward(self, z: Tensor) -> Tensor:
        h = self.time_up(self.mid(self.conv_in(z)))
        for block, conv in zip(self.ups, self.up_convs):
            h = conv(F.interpolate(block(h), scale_factor=(1, 2, 2), mode="nearest"))  # space doubled, time kept
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 3, T, H, W)


class VideoAutoencoder(nn.Module):
    def __init__(self, cfg: VideoAutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.register_buffer("latent_scale", torch.ones(()))  # 1 / std of training latents, set after training

    def check_shape(self, video: Tensor) -> None:
        _, C, T, H, W = video.shape
        r, d = self.cfg.time_downsample, self.cfg.downsample
        if C != 3 or (T - 1) % r or H % d or W % d:
            raise ValueError(
                f"the video autoencoder takes (B, 3, 1 + k * {r}, H, W) with H and W multiples of {d}; got {tuple(video.shape)}"
            )

    def posterior(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log-variance), each (B, latent, T', H', W')."""
        self.check_shape(video)
        mean, logvar = self.encoder(video).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, video: Tensor) -> Tensor:
        """Scaled latents for diffusion: the posterior mean times latent_scale."""
        mean, _ = self.posterior(video)
        return mean * self.latent_scale

    def decode(self, latents: Tensor) -> Tensor:
        """Pixels (B, 3, T, H, W) from scaled latents."""
        return self.decoder(latents / self.latent_scale)

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the latent of a video of that size."""
        r, d = self.cfg.time_downsample, self.cfg.downsample
        return self.cfg.latent_channels, 1 + (frames - 1) // r, height // d, width // d

    def losses(self, video: Tensor) -> dict[str, Tensor]:
        """{"reconstruction" (MSE), "kl" (per latent element), "loss"} for one batch, the latent drawn from the posterior."""
        mean, logvar = self.posterior(video)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        reconstruction = F.mse_loss(self.decoder(z), video)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        return {"reconstruction": reconstruction, "kl": kl, "loss": reconstruction + self.cfg.kl_weight * kl}
