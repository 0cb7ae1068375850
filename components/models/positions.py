"""Fixed 2D sine-cosine position embeddings for a grid of patches (MAE, Qwen-VL's resampler)."""

from __future__ import annotations

import torch
from torch import Tensor


def sincos_1d(dim: int, positions: Tensor, temperature: float = 10000.0) -> Tensor:
    """(N,) positions -> (N, dim): half sines, half cosines over geometric frequencies."""
    if dim % 2:
        raise ValueError(f"sincos_1d: dim={dim} must be even (sines and cosines in pairs)")
    frequencies = temperature ** (-torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))  # (dim/2,)
    angles = positions.to(torch.float64)[:, None] * frequencies[None]  # (N, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(dim: int, height: int, width: int) -> Tensor:
    """(height * width, dim) for a row-major grid: the first half of the channels
    encodes the column, the second half the row, so either is linearly readable."""
    if dim % 4:
        raise ValueError(f"sincos_2d: dim={dim} must be a multiple of 4 (sin and cos for each of two axes)")
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, cols.flatten()), sincos_1d(dim // 2, rows.flatten())], dim=1)


def sincos_spacetime(dim: int, frames: int, height: int, width: int) -> Tensor:
    """(frames * height * width, dim) for a frame-major grid of spacetime patches: the 2D embedding of the
    patch's place plus the 1D embedding of its frame, so a one-frame video is an image offset by frame 0's."""
    space = sincos_2d(dim, height, width)  # (H * W, dim)
    time = sincos_1d(dim, torch.arange(frames))  # (T, dim)
    return (time[:, None, :] + space[None]).reshape(frames * height * width, dim)
