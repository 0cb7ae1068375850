"""Spacetime patches: a latent video (B, C, T, H, W) cut into tokens and put back together.

A patch spans `frames` latent frames and `size` x `size` latent cells; tokens
are ordered frame-major (every place of the first frame, then the second...),
so tokens (B, T' * H' * W', C * frames * size * size) view as (B, T', H' * W', .)
for attention within a frame. Any grid whose sides the patch divides works:
the number of tokens, not a fixed size, is what a video's duration and shape
change (Sora's native sizes).
"""

from __future__ import annotations

from torch import Tensor

Grid = tuple[int, int, int]
"""(frames, rows, columns) of patches."""


def patch_grid(shape: tuple[int, ...], frames: int, size: int) -> Grid:
    """The patch grid of a latent of `shape` (B, C, T, H, W), or a ValueError naming the side that does not divide."""
    _, _, T, H, W = shape
    for name, side, step in (("frames", T, frames), ("height", H, size), ("width", W, size)):
        if side % step:
            raise ValueError(f"a latent of {name} {side} does not cut into patches of {step}; the {name} must be a multiple of {step}")
    return T // frames, H // size, W // size


def patchify(x: Tensor, frames: int, size: int) -> tuple[Tensor, Grid]:
    """(B, C, T, H, W) -> tokens (B, N, C * frames * size * size) and their grid."""
    B, C = x.shape[:2]
    t, h, w = grid = patch_grid(tuple(x.shape), frames, size)
    x = x.reshape(B, C, t, frames, h, size, w, size)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, t, h, w, C, frames, size, size)
    return x.reshape(B, t * h * w, C * frames * size * size), grid


def unpatchify(tokens: Tensor, grid: Grid, channels: int, frames: int, size: int) -> Tensor:
    """The inverse of patchify: tokens (B, N, C * frames * size * size) -> (B, C, T, H, W)."""
    B = tokens.shape[0]
    t, h, w = grid
    x = tokens.reshape(B, t, h, w, channels, frames, size, size)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, C, t, frames, h, size, w, size)
    return x.reshape(B, channels, t * frames, h * size, w * size)
