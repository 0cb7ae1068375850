"""OFA's location tokens: each coordinate of a box quantised into one of `bins` tokens, `<bin_NNN>`.

A box (x0, y0, x1, y1), normalised to 0..1, is four tokens, one per coordinate, in that order:
`<bin_012><bin_040><bin_019><bin_047>`; a coordinate v is bin round(v * (bins - 1)) and reads back as
bin / (bins - 1). Reading gives the same shape of result as KOSMOS-2's LocationGrid.read (the text
without tokens, and each box named by its tokens), so the answer scoring of either scheme is shared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.data.errors import DataError

NormalisedBox = tuple[float, float, float, float]
_BIN = re.compile(r"<bin_(\d+)>")
_BOX = re.compile(r"(?:<bin_\d+>){4}")


@dataclass(frozen=True)
class CoordinateBins:
    bins: int = 64

    def __post_init__(self) -> None:
        if not 2 <= self.bins <= 1000:
            raise ValueError(f"bins={self.bins}: OFA quantises coordinates into 2 to 1000 bins (tokens are numbered with three digits)")

    @property
    def tokens(self) -> list[str]:
        """Every location token, in bin order: what a tokenizer adds to its vocabulary."""
        return [self.token(k) for k in range(self.bins)]

    def token(self, k: int) -> str:
        if not 0 <= k < self.bins:
            raise ValueError(f"bin {k} is not one of {self.bins} (allowed: 0..{self.bins - 1})")
        return f"<bin_{k:03d}>"

    def location(self, boxes: Sequence[Sequence[float]]) -> str:
        """The tokens of one box, or of several one after another."""
        out = []
        for box in boxes:
            if len(box) != 4 or not all(0.0 <= float(v) <= 1.0 for v in box):
                raise DataError(f"box {list(box)} must be [x0, y0, x1, y1] normalised to 0..1")
            out += [self.token(round(float(v) * (self.bins - 1))) for v in box]
        return "".join(out)

    def read(self, text: str) -> tuple[str, list[tuple[str, list[NormalisedBox]]]]:
        """The text without location tokens, and every complete box: (its tokens, [box])."""
        entities = []
        for match in _BOX.finditer(text):
            values = [int(v) for v in _BIN.findall(match[0])]
            if any(v >= self.bins for v in values):
                raise DataError(f"{match[0]!r}: a bin is not one of {self.bins}")
            x0, y0, x1, y1 = (v / (self.bins - 1) for v in values)
            entities.append((match[0], [(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))]))
        return _BIN.sub("", text).strip(), entities


def bins_of(vocabulary: Mapping[str, int]) -> CoordinateBins | None:
    """The bins a tokenizer's location tokens make, or None when it has none."""
    count = sum(1 for token in vocabulary if _BIN.fullmatch(token))
    return CoordinateBins(count) if count else None
