"""LLaVA-1.6 (LLaVA-NeXT) any-resolution geometry: pick a grid, and merge tile features back into one map.

An image of size (height, width) is resized, keeping its aspect, into the best
of a list of pinpoint resolutions, padded to it, cut into tiles of the tower's
input size, and also seen whole at that size (the global view). The tower runs
on every tile; `merge_anyres_features` lays the tiles' patch features back out
as one feature map, drops the rows or columns that only saw padding, ends every
row with a learned separator token, and puts the global view first.

Sizes are (height, width) everywhere here. (The original LLaVA code passes
(width, height) to its unpad; HF transformers passes (height, width), as we do.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Size = tuple[int, int]  # (height, width)


def select_best_resolution(original: Size, pinpoints: Sequence[Size]) -> Size:
    """The pinpoint that keeps the most of the image's pixels after an aspect-preserving
    downscale, ties broken by the least padding."""
    if not pinpoints:
        raise ValueError("select_best_resolution: the list of pinpoint resolutions is empty")
    height, width = original
    best, most_kept, least_wasted = None, -1, float("inf")
    for pin_h, pin_w in pinpoints:
        scale = min(pin_w / width, pin_h / height)
        kept = min(int(width * scale) * int(height * scale), width * height)
        wasted = pin_w * pin_h - kept
        if kept > most_kept or (kept == most_kept and wasted < least_wasted):
            best, most_kept, least_wasted = (pin_h, pin_w), kept, wasted
    return best


def anyres_grid_shape(original: Size, pinpoints: Sequence[Size], tile_size: int) -> tuple[int, int]:
    """(rows, columns) of tiles for an image of size `original`."""
    pin_h, pin_w = select_best_resolution(original, pinpoints)
    if pin_h % tile_size or pin_w % tile_size:
        raise ValueError(f"anyres: pinpoint {(pin_h, pin_w)} is not a whole number of {tile_size}-pixel tiles")
    return pin_h // tile_size, pin_w // tile_size


def anyres_view_count(original: Size, pinpoints: Sequence[Size], tile_size: int) -> int:
    """How many tower inputs an image becomes: the global view and its grid of tiles."""
    rows, cols = anyres_grid_shape(original, pinpoints, tile_size)
    return 1 + rows * cols


def unpad_features(features: Tensor, original: Size) -> Tensor:
    """(D, H, W) feature map of a padded image -> the part that covers the image itself.

    The image was scaled to touch the padded canvas on one axis and centred on the other;
    the other axis loses equal bands top and bottom (or left and right)."""
    height, width = original
    _, cur_h, cur_w = features.shape
    if width / height > cur_w / cur_h:  # wider than the canvas: bands above and below
        new_h = int(round(height * cur_w / width, 7))
        pad = (cur_h - new_h) // 2
        return features[:, pad : cur_h - pad, :]
    new_w = int(round(width * cur_h / height, 7))
    pad = (cur_w - new_w) // 2
    return features[:, :, pad : cur_w - pad]


def merge_anyres_features(
    features: Tensor, original: Size, pinpoints: Sequence[Size], tile_size: int, patch_size: int, row_separator: Tensor
) -> Tensor:
    """features (1 + rows * cols, n, D): the global view's patch tokens, then each tile's, row-major.
    Returns (n + tokens of the unpadded map with one separator per row, D)."""
    rows, cols = anyres_grid_shape(original, pinpoints, tile_size)
    side = tile_size // patch_size
    global_view, tiles = features[0], features[1:]
    if tiles.shape[0] != rows * cols or tiles.shape[1] != side * side:
        raise ValueError(
            f"merge_anyres_features: expected {rows}x{cols} tiles of {side * side} tokens for an image of {original}, "
            f"got {tiles.shape[0]} tiles of {tiles.shape[1]}"
        )
    D = tiles.shape[-1]
    grid = tiles.view(rows, cols, side, side, D).permute(4, 0, 2, 1, 3).reshape(D, rows * side, cols * side)  # (D, H, W)
    grid = unpad_features(grid, original)
    separators = row_separator.view(D, 1, 1).expand(D, grid.shape[1], 1).to(grid.dtype)
    grid = torch.cat([grid, separators], dim=2)  # (D, H', W' + 1)
    return torch.cat([global_view, grid.flatten(1).transpose(0, 1)], dim=0)
