"""Sample grids a person can look at: an animated GIF and a still PNG of generated videos beside real ones.

Rows are the real test videos and then the samples at each guidance scale;
columns are the captions. Cells of different sizes are centred on a cell of
the largest size, videos of different lengths hold their last frame, and
everything is enlarged by a whole factor (nearest neighbour) so that 32-pixel
shapes are visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LABEL_WIDTH, GAP, BACKGROUND, INK = 64, 4, (0, 0, 0), (230, 230, 230)


def grid_frames(rows: list[tuple[str, list[np.ndarray]]], zoom: int = 3) -> list[Image.Image]:
    """rows: (label, videos as uint8 (T, H, W, 3)), every row with the same number of videos."""
    if not rows or not rows[0][1]:
        raise ValueError("a preview grid needs at least one row of videos")
    videos = [v for _, row in rows for v in row]
    frames = max(v.shape[0] for v in videos)
    cell_h = max(v.shape[1] for v in videos) * zoom
    cell_w = max(v.shape[2] for v in videos) * zoom
    columns = len(rows[0][1])
    width = LABEL_WIDTH + columns * (cell_w + GAP)
    height = len(rows) * (cell_h + GAP)
    out = []
    for t in range(frames):
        canvas = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        for r, (label, row) in enumerate(rows):
            top = r * (cell_h + GAP)
            draw.text((4, top + cell_h // 2 - 5), label, fill=INK)
            for c, video in enumerate(row):
                frame = Image.fromarray(video[min(t, video.shape[0] - 1)]).resize(
                    (video.shape[2] * zoom, video.shape[1] * zoom), Image.NEAREST
                )
                left = LABEL_WIDTH + c * (cell_w + GAP) + (cell_w - frame.width) // 2
                canvas.paste(frame, (left, top + (cell_h - frame.height) // 2))
        out.append(canvas)
    return out


def save_previews(rows: list[tuple[str, list[np.ndarray]]], gif: Path, png: Path, frame_ms: int = 250) -> None:
    """The grid as a looping GIF and, for places that show no animation, its middle frame as a PNG."""
    frames = grid_frames(rows)
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    frames[len(frames) // 2].save(png)
