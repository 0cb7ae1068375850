"""KOSMOS-2's location tokens: a box as the two grid cells of its corners, and grounded captions.

The image is cut into `bins` x `bins` cells, numbered row by row from the top
left; each cell is a token `<patch_index_NNNN>`. A box (x0, y0, x1, y1),
normalised to 0..1, is the cell holding its top-left corner and the cell
holding its bottom-right one. A grounded caption marks each phrase and the
boxes it names:

    <phrase>a red circle</phrase><object><patch_index_0044><patch_index_0302></object>

several boxes of one phrase separated by `</delimiter_of_multi_objects/>`.
Reading the cells back gives a box whose corners are the cells' centres (where
a corner anywhere in the cell is expected to be), or, for a box one cell wide
or high, the cells' outer edges, so that it keeps an area.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.data.errors import DataError

NormalisedBox = tuple[float, float, float, float]

PHRASE, END_PHRASE = "<phrase>", "</phrase>"
OBJECT, END_OBJECT = "<object>", "</object>"
DELIMITER = "</delimiter_of_multi_objects/>"
GROUNDING = "<grounding>"
"""The prompt prefix that asks a KOSMOS-2 model for a grounded caption."""
_CELL = re.compile(r"<patch_index_(\d+)>")
_ENTITY = re.compile(
    rf"(?:{PHRASE}(?P<phrase>[^<]+){END_PHRASE})?{OBJECT}(?P<cells>(?:<patch_index_\d+>){{2}}(?:{DELIMITER}(?:<patch_index_\d+>){{2}})*){END_OBJECT}"
)
_MARKUP = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class LocationGrid:
    bins: int = 32
    """Cells per side (KOSMOS-2: 32, so 1,024 location tokens)."""

    def __post_init__(self) -> None:
        if not 1 <= self.bins <= 100:
            raise ValueError(f"bins={self.bins}: a grid of 1 to 100 cells per side (tokens are numbered with four digits)")

    @property
    def tokens(self) -> list[str]:
        """Every location token, in cell order: what a tokenizer adds to its vocabulary."""
        return [self.token(cell) for cell in range(self.bins * self.bins)]

    def token(self, cell: int) -> str:
        if not 0 <= cell < self.bins * self.bins:
            raise ValueError(f"cell {cell} is not on a {self.bins}x{self.bins} grid (allowed: 0..{self.bins * self.bins - 1})")
        return f"<patch_index_{cell:04d}>"

    def cells(self, box: Sequence[float]) -> tuple[int, int]:
        """(top-left cell, bottom-right cell) of a normalised box."""
        x0, y0, x1, y1 = _checked(box)
        n = self.bins
        left, top = math.floor(x0 * n), math.floor(y0 * n)
        right, bottom = math.ceil(x1 * n) - 1, math.ceil(y1 * n) - 1  # the last cell the box reaches into
        return top * n + left, bottom * n + right

    def box(self, top_left: int, bottom_right: int) -> NormalisedBox:
        """The normalised box two cells stand for (see the module's docstring)."""
        n, size = self.bins, 1.0 / self.bins
        (top, left), (bottom, right) = divmod(top_left, n), divmod(bottom_right, n)
        if left == right or top == bottom:
            return left * size, top * size, (right + 1) * size, (bottom + 1) * size
        return (left + 0.5) * size, (top + 0.5) * size, (right + 0.5) * size, (bottom + 0.5) * size

    def location(self, boxes: Sequence[Sequence[float]]) -> str:
        """`<object>...</object>` for one or more boxes of one phrase."""
        pairs = [self.token(a) + self.token(b) for a, b in (self.cells(box) for box in boxes)]
        return OBJECT + DELIMITER.join(pairs) + END_OBJECT

    def ground(self, caption: str, regions: Sequence[tuple[str, Sequence[Sequence[float]]]]) -> str:
        """The caption with each region's phrase (its first occurrence after the previous one) marked and
        followed by its boxes' location tokens. A phrase not in the caption is a DataError."""
        out, start = [], 0
        for phrase, boxes in regions:
            at = caption.find(phrase, start)
            if at < 0 or not phrase:
                raise DataError(f"phrase {phrase!r} is not in the caption {caption!r} (after position {start})")
            out += [caption[start:at], PHRASE, phrase, END_PHRASE, self.location(boxes)]
            start = at + len(phrase)
        return "".join(out + [caption[start:]])

    def read(self, text: str) -> tuple[str, list[tuple[str, list[NormalisedBox]]]]:
        """A grounded caption's plain text and its phrases with their boxes. An object without a phrase is
        named by its tokens; cells off the grid are a DataError."""
        entities = []
        for match in _ENTITY.finditer(text):
            cells = [int(c) for c in _CELL.findall(match["cells"])]
            if any(c >= self.bins * self.bins for c in cells):
                raise DataError(f"{match[0]!r}: a cell is not on the {self.bins}x{self.bins} grid")
            boxes = [self.box(a, b) for a, b in zip(cells[::2], cells[1::2])]
            if match["phrase"] is not None:
                entities.append((match["phrase"].strip(), boxes))
            else:
                entities += [(self.token(a) + self.token(b), [box]) for (a, b), box in zip(zip(cells[::2], cells[1::2]), boxes)]
        return _MARKUP.sub("", text).strip(), entities


def grounding_words(grid: LocationGrid) -> list[str]:
    """What a tokenizer adds for KOSMOS-2: the markup, then every location token."""
    return [GROUNDING, PHRASE, END_PHRASE, OBJECT, END_OBJECT, DELIMITER, *grid.tokens]


def grid_of(vocabulary: Mapping[str, int]) -> LocationGrid | None:
    """The grid a tokenizer's location tokens make, or None when it has none."""
    cells = sum(1 for token in vocabulary if _CELL.fullmatch(token))
    if not cells:
        return None
    bins = math.isqrt(cells)
    if bins * bins != cells or GROUNDING not in vocabulary:
        raise DataError(f"the tokenizer has {cells} location tokens{'' if GROUNDING in vocabulary else ' and no ' + GROUNDING}: not a KOSMOS-2 grid")
    return LocationGrid(bins)


def required_grid(vocabulary: Mapping[str, int]) -> LocationGrid:
    """grid_of, for a model that writes location tokens: a tokenizer without them is a DataError."""
    grid = grid_of(vocabulary)
    if grid is None:
        raise DataError("the dataset's tokenizer has no location tokens: build the dataset with data.tokenizer.location_bins")
    return grid


def _checked(box: Sequence[float]) -> NormalisedBox:
    if len(box) != 4:
        raise DataError(f"box {list(box)} must be [x0, y0, x1, y1]")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise DataError(f"box {list(box)} must be normalised with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return x0, y0, x1, y1
