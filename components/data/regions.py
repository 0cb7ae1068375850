"""Grounded captions: which patch tokens of an image each described region covers.

A sample may list `regions`, each a box normalised to the image (x0, y0, x1, y1 in 0..1) and the
phrase that names what is in it ("a small green circle"). Region-word alignment (see
training.losses.region_word_loss) pulls the patch tokens a region covers towards the words of its
phrase, so that every token a LLaVA connector reads says what it shows, not only the image's mean.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from components.data.errors import DataError

NO_REGION = -1
MIN_COVER = 0.1
"""A token belongs to a region that covers at least this fraction of its cell (the region covering the
most wins); the token under a region's centre always belongs to it, so a small region keeps one."""
ARTICLES = frozenset({"a", "an", "the"})
"""Words that name nothing in a region: left out of its phrase's words."""

NormalisedBox = tuple[float, float, float, float]


def check_regions(regions: object, where: str) -> None:
    """Raise DataError unless `regions` is a list of {"box": [x0, y0, x1, y1] in 0..1, "phrase": str}."""
    if not isinstance(regions, list):
        raise DataError(f"{where}: field 'regions' is {regions!r}; expected a list of "
                        "{'box': [x0, y0, x1, y1] normalised to 0..1, 'phrase': str}")
    for number, region in enumerate(regions):
        field = f"regions[{number}]"
        if not isinstance(region, dict) or set(region) != {"box", "phrase"}:
            raise DataError(f"{where}: field '{field}' is {region!r}; expected exactly the keys 'box' and 'phrase'")
        box, phrase = region["box"], region["phrase"]
        if (not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box)
                or not 0 <= box[0] < box[2] <= 1 or not 0 <= box[1] < box[3] <= 1):
            raise DataError(f"{where}: field '{field}.box' is {box!r}; expected [x0, y0, x1, y1] "
                            "with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 (fractions of the image)")
        if not isinstance(phrase, str) or not phrase_words(phrase):
            raise DataError(f"{where}: field '{field}.phrase' is {phrase!r}; expected a phrase with at "
                            f"least one word besides {sorted(ARTICLES)}")


def phrase_words(phrase: str) -> list[str]:
    """The lower-case words of a phrase, articles left out: 'a small green circle' -> small, green, circle."""
    return [w for w in re.findall(r"[a-z0-9]+", phrase.lower()) if w not in ARTICLES]


def token_regions(boxes: Sequence[NormalisedBox], grid: int) -> list[int]:
    """For each cell of a grid x grid patch layout (row-major), the index of the region it belongs
    to, or NO_REGION."""
    cell = 1.0 / grid
    owner = [NO_REGION] * (grid * grid)
    best = [0.0] * (grid * grid)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        centre_col = min(int((x0 + x1) / 2 / cell), grid - 1)
        centre_row = min(int((y0 + y1) / 2 / cell), grid - 1)
        for row in range(int(y0 / cell), min(grid, int(y1 / cell) + 1)):
            for col in range(int(x0 / cell), min(grid, int(x1 / cell) + 1)):
                cover = (max(0.0, min(x1, (col + 1) * cell) - max(x0, col * cell))
                         * max(0.0, min(y1, (row + 1) * cell) - max(y0, row * cell))) / (cell * cell)
                if (row, col) == (centre_row, centre_col):
                    cover += 1.0  # the centre's cell ranks above any cover alone
                elif cover < MIN_COVER:
                    continue
                if cover > best[row * grid + col]:
                    best[row * grid + col] = cover
                    owner[row * grid + col] = index
    return owner
