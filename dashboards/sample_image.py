"""A dataset image as the Data page shows it: enlarged without blurring, its objects' boxes drawn on it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, UnidentifiedImageError

from dashboards.errors import DashboardError

SHOWN_WIDTH = 256
BOX_COLOUR = (220, 38, 38)


def annotated_image(path: Path, objects: Iterable[Mapping[str, Any]], width: int = SHOWN_WIDTH) -> Image.Image:
    """The image enlarged by a whole factor to at least `width` pixels (nearest neighbour), each object's box outlined.

    A box is [x0, y0, x1, y1] in the image's own pixels, x1 and y1 exclusive, as the Shapes world writes it.
    """
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise DashboardError(f"{path} is not an image that can be shown ({error})") from None
    scale = max(1, -(-width // image.width))
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for item in objects:
        box = item.get("box")
        if isinstance(box, list | tuple) and len(box) == 4 and all(isinstance(v, int | float) for v in box):
            x0, y0, x1, y1 = (v * scale for v in box)
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=BOX_COLOUR, width=max(1, scale // 4))
    return image
