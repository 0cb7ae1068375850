"""Text-dense pages of the Shapes world, for KOSMOS-2.5: rendered words in text blocks, read two ways.

A page is a square image cut into ROWS rows. It may open with a heading (one word, large glyphs, in
the top row); then two to five lines of one or two Shapes-world words ('small red', 'four circles'),
each on its own row, some of them bullet items (a small square before the text) and some plain lines,
indented by zero to two characters. The words are the Shapes world's own (colours, shapes, sizes,
counts, places), drawn in its colours on its background.

A page is read by one of two task prompts (KOSMOS-2.5's):
  <ocr>  spatially-aware text blocks: every line, top to bottom, as its box and then its text
         ('[[x0,y0,x1,y1]]' in the 000-999 format of the Shapes boxes; location tokens once a
         stage grounds it, data.grounded.located_blocks);
  <md>   markdown: '# heading', '- item' for bullet items, plain lines as they are, one per line.
The bullet is a shape, not a character, so only the markdown says which lines are items.

A page is a pure function of (seed, split, index), as a scene is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.data.glyphs import ADVANCE, GLYPH_HEIGHT, draw_text, text_width
from components.data.shapes_annotations import BOX_SCALE
from components.data.shapes_world import BACKGROUND_RGB, COLOUR_RGB, SHAPE_NAMES, SIZE_FRACTION, SPLITS

ROWS = 8
"""Rows per page: the heading's, then one per body line."""
OCR_PROMPT, MARKDOWN_PROMPT = "<ocr>", "<md>"
TASKS: dict[str, str] = {"ocr": OCR_PROMPT, "md": MARKDOWN_PROMPT}
PAGE_WORDS: tuple[str, ...] = (
    *COLOUR_RGB, *SHAPE_NAMES, *(f"{s}s" for s in SHAPE_NAMES), *SIZE_FRACTION,
    "one", "two", "three", "four", "left", "right", "top", "bottom", "centre",
)
HEADING_WORDS: tuple[str, ...] = (*SHAPE_NAMES, "shapes", "colours", "sizes", "places", "counts")
_PAGE_STREAM = 7  # the scene_rng-style stream of pages, apart from the scenes' own
_MAX_INDENT = 2  # characters

BlockKind = Literal["heading", "item", "line"]


class PagesConfig(BaseModel):
    """How many pages each split holds, and how they look."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: int = Field(3000, ge=1)
    val: int = Field(100, ge=1)
    test: int = Field(200, ge=1)
    image_size: int = Field(128, ge=64, le=1024)
    """Pixels per side; a row is image_size / 8 pixels high, body glyphs are drawn at image_size / 64
    pixels per font pixel and the heading's at 1.5 times that."""
    min_lines: int = Field(2, ge=1, le=ROWS - 1)
    max_lines: int = Field(5, ge=1, le=ROWS - 1)
    heading: float = Field(0.7, ge=0, le=1)
    """The fraction of pages that open with a heading."""
    items: float = Field(0.5, ge=0, le=1)
    """The chance that a body line is a bullet item rather than a plain line."""

    @model_validator(mode="after")
    def _check(self) -> PagesConfig:
        if self.min_lines > self.max_lines:
            raise ValueError(f"PagesConfig: min_lines={self.min_lines} is larger than max_lines={self.max_lines}")
        if self.image_size % 64:
            raise ValueError(f"PagesConfig: image_size={self.image_size} is not a multiple of 64 (allowed: 64, 128, 192, ...): glyphs need whole pixels")
        return self

    def split_size(self, split: str) -> int:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


@dataclass(frozen=True)
class TextBlock:
    """One line of a page: its kind, its text and the pixel box of its glyphs (x1, y1 exclusive)."""

    kind: BlockKind
    text: str
    box: tuple[int, int, int, int]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "box": list(self.box)}


@dataclass(frozen=True)
class Page:
    size: int
    blocks: tuple[TextBlock, ...]  # top to bottom
    colours: tuple[str, ...]  # one per block

    def to_dict(self) -> dict:
        return {"size": self.size, "blocks": [b.to_dict() for b in self.blocks], "colours": list(self.colours)}


def page_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index, _PAGE_STREAM])


def sample_page(config: PagesConfig, seed: int, split: str, index: int) -> Page:
    """The page number `index` of `split`: a pure function of (config, seed, split, index)."""
    rng = page_rng(seed, split, index)
    row, body, heading = config.image_size // ROWS, config.image_size // 64, config.image_size * 3 // 128
    blocks: list[TextBlock] = []
    if rng.random() < config.heading:
        word = HEADING_WORDS[int(rng.integers(len(HEADING_WORDS)))]
        blocks.append(_block("heading", word, 0, _indent(rng) * ADVANCE * body + body * 2, row, heading))
    count = int(rng.integers(config.min_lines, config.max_lines + 1))
    rows = sorted(int(r) + 1 for r in rng.choice(ROWS - 1, size=count, replace=False))
    for r in rows:
        words = [PAGE_WORDS[int(i)] for i in rng.choice(len(PAGE_WORDS), size=int(rng.integers(1, 3)), replace=False)]
        kind: BlockKind = "item" if rng.random() < config.items else "line"
        bullet = 2 if kind == "item" else 0  # the bullet and a space, in characters
        left = (_indent(rng) + bullet) * ADVANCE * body + body * 2
        text = " ".join(words)
        if left + text_width(text, body) > config.image_size - body:  # two long words: keep the first
            text = words[0]
        blocks.append(_block(kind, text, r, left, row, body))
    colours = tuple("white" if block.kind == "heading" else _palette_colour(rng) for block in blocks)
    return Page(config.image_size, tuple(blocks), colours)


def _indent(rng: np.random.Generator) -> int:
    return int(rng.integers(0, _MAX_INDENT + 1))


def _palette_colour(rng: np.random.Generator) -> str:
    names = list(COLOUR_RGB)
    return names[int(rng.integers(len(names)))]


def _block(kind: BlockKind, text: str, row_index: int, left: int, row: int, scale: int) -> TextBlock:
    top = row_index * row + (row - GLYPH_HEIGHT * scale) // 2
    return TextBlock(kind, text, (left, top, left + text_width(text, scale), top + GLYPH_HEIGHT * scale))


def render_page(page: Page) -> Image.Image:
    image = Image.new("RGB", (page.size, page.size), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    body = page.size // 64
    for block, colour in zip(page.blocks, page.colours):
        x0, y0, _, y1 = block.box
        scale = (y1 - y0) // GLYPH_HEIGHT
        fill = COLOUR_RGB[colour]
        draw_text(draw, x0, y0, block.text, scale, fill)
        if block.kind == "item":  # a square bullet two characters before the text, mid-height
            side = 2 * body
            bx, by = x0 - 2 * ADVANCE * body, (y0 + y1) // 2 - side // 2
            draw.rectangle((bx, by, bx + side - 1, by + side - 1), fill=fill)
    return image


def normalised_box(block: TextBlock, size: int) -> tuple[int, int, int, int]:
    """The block's box in the 000-999 format."""
    return tuple(min(BOX_SCALE, round(v * BOX_SCALE / size)) for v in block.box)


def ocr_text(page: Page) -> str:
    """The <ocr> answer: one line per block, top to bottom, '[[x0,y0,x1,y1]]' then the text."""
    lines = []
    for block in page.blocks:
        x0, y0, x1, y1 = normalised_box(block, page.size)
        lines.append(f"[[{x0:03d},{y0:03d},{x1:03d},{y1:03d}]]{block.text}")
    return "\n".join(lines)


def markdown_text(page: Page) -> str:
    """The <md> answer: '# heading', '- item', plain lines, one per line."""
    prefix = {"heading": "# ", "item": "- ", "line": ""}
    return "\n".join(prefix[block.kind] + block.text for block in page.blocks)


def plain_text(page: Page) -> str:
    """Every block's text in reading order, separated by spaces: what the page says, for a text tower."""
    return " ".join(block.text for block in page.blocks)


def page_from_dict(data: dict) -> Page:
    blocks = tuple(TextBlock(b["kind"], b["text"], tuple(int(v) for v in b["box"])) for b in data["blocks"])
    return Page(int(data["size"]), blocks, tuple(data["colours"]))
