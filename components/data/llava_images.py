"""What a LLaVA model sees of an image: one square view (LLaVA, LLaVA-1.5) or, with any-resolution
input (LLaVA-1.6), a global view plus the tiles of the image fitted into its best pinpoint grid.

Items carry `pixel_values` (3, S, S), or for any-resolution (V, 3, S, S) views and `image_sizes`
(height, width) of the original, from which the model knows the grid and what to unpad.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from components.data.errors import DataError
from components.models.anyres import Size, anyres_view_count, select_best_resolution


def open_rgb(path: Path) -> Image.Image:
    """The image at `path` as RGB, read fully (the file is closed on return)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError as exc:
        raise DataError(f"image file not found: {path}") from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"{path} is not an image Pillow can read") from exc


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> float tensor (3, H, W) in [-1, 1]."""
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)  # (3, H, W) uint8, a view of a copy of Pillow's bytes
    return pixels.to(torch.float32, memory_format=torch.contiguous_format).div_(127.5).sub_(1.0)  # one float copy


def load_image(path: Path, image_size: int) -> torch.Tensor:
    """RGB image as a float tensor (3, image_size, image_size) in [-1, 1], resized
    (bicubic, aspect ratio not kept) when it is not already that size."""
    rgb = open_rgb(path)
    if rgb.size != (image_size, image_size):
        rgb = rgb.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return to_tensor(rgb)  # (3, S, S)


PAD_RGB = (0, 0, 0)  # the canvas around an aspect-preserving resize (its features are unpadded away)


def anyres_views(image: Image.Image, tile_size: int, pinpoints: Sequence[Size]) -> torch.Tensor:
    """(1 + rows * cols, 3, S, S): the whole image squashed to S x S, then the tiles (row-major) of
    the image resized without distortion into its best pinpoint and centred on a padded canvas."""
    width, height = image.size
    pin_h, pin_w = select_best_resolution((height, width), pinpoints)
    scale = min(pin_w / width, pin_h / height)
    new_w, new_h = min(pin_w, max(1, round(width * scale))), min(pin_h, max(1, round(height * scale)))
    canvas = Image.new("RGB", (pin_w, pin_h), PAD_RGB)
    canvas.paste(image.resize((new_w, new_h), Image.Resampling.BICUBIC), ((pin_w - new_w) // 2, (pin_h - new_h) // 2))
    views = [image.resize((tile_size, tile_size), Image.Resampling.BICUBIC)]
    for top in range(0, pin_h, tile_size):
        for left in range(0, pin_w, tile_size):
            views.append(canvas.crop((left, top, left + tile_size, top + tile_size)))
    return torch.stack([to_tensor(v) for v in views])


@dataclass(frozen=True)
class ImageProcessor:
    """Turns image files into model inputs and batches them; `pinpoints` switches on any-resolution."""

    image_size: int
    pinpoints: tuple[Size, ...] | None = None

    def __call__(self, path: Path | None) -> dict[str, torch.Tensor]:
        if self.pinpoints is None:
            pixels = torch.zeros(3, self.image_size, self.image_size) if path is None else load_image(path, self.image_size)
            return {"pixel_values": pixels}
        if path is None:
            return {"pixel_values": torch.zeros(1, 3, self.image_size, self.image_size),
                    "image_sizes": torch.tensor([self.image_size, self.image_size])}
        image = open_rgb(path)
        return {"pixel_values": anyres_views(image, self.image_size, self.pinpoints),
                "image_sizes": torch.tensor([image.height, image.width])}

    def num_views(self, size: Size) -> int:
        return anyres_view_count(size, self.pinpoints, self.image_size)


def collate_images(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack the image fields of items; any-resolution views are zero-padded to the most views."""
    batch = {}
    pixels = [item["pixel_values"] for item in items]
    if pixels[0].dim() == 4:  # (V, 3, S, S) views
        most = max(p.shape[0] for p in pixels)
        pixels = [torch.cat([p, p.new_zeros(most - p.shape[0], *p.shape[1:])]) for p in pixels]
    batch["pixel_values"] = torch.stack(pixels)
    if "image_sizes" in items[0]:
        batch["image_sizes"] = torch.stack([item["image_sizes"] for item in items])
    return batch
