"""A 3 x 5 pixel bitmap font, drawn at any integer scale: the letters of the Shapes world's text pages.

A bitmap of our own rather than a system font, so that a page is the same pixels on every machine
and every Pillow build. Letters are drawn as capitals; digits and the hyphen are there too.
A character cell is 4 x 6 units (one unit of space after and below each glyph).
"""

from __future__ import annotations

from PIL import ImageDraw

GLYPH_WIDTH, GLYPH_HEIGHT = 3, 5
ADVANCE = GLYPH_WIDTH + 1  # units from one character's left edge to the next one's

_ROWS: dict[str, tuple[str, str, str, str, str]] = {
    "a": ("010", "101", "111", "101", "101"), "b": ("110", "101", "110", "101", "110"),
    "c": ("011", "100", "100", "100", "011"), "d": ("110", "101", "101", "101", "110"),
    "e": ("111", "100", "110", "100", "111"), "f": ("111", "100", "110", "100", "100"),
    "g": ("011", "100", "101", "101", "011"), "h": ("101", "101", "111", "101", "101"),
    "i": ("111", "010", "010", "010", "111"), "j": ("001", "001", "001", "101", "010"),
    "k": ("101", "101", "110", "101", "101"), "l": ("100", "100", "100", "100", "111"),
    "m": ("101", "111", "111", "101", "101"), "n": ("110", "101", "101", "101", "101"),
    "o": ("010", "101", "101", "101", "010"), "p": ("110", "101", "110", "100", "100"),
    "q": ("010", "101", "101", "110", "011"), "r": ("110", "101", "110", "101", "101"),
    "s": ("011", "100", "010", "001", "110"), "t": ("111", "010", "010", "010", "010"),
    "u": ("101", "101", "101", "101", "111"), "v": ("101", "101", "101", "101", "010"),
    "w": ("101", "101", "111", "111", "101"), "x": ("101", "101", "010", "101", "101"),
    "y": ("101", "101", "010", "010", "010"), "z": ("111", "001", "010", "100", "111"),
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("110", "001", "010", "100", "111"), "3": ("110", "001", "010", "001", "110"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "110", "001", "110"),
    "6": ("011", "100", "111", "101", "111"), "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "110"),
    "-": ("000", "000", "111", "000", "000"), " ": ("000", "000", "000", "000", "000"),
}
DRAWABLE = frozenset(_ROWS)
"""The characters the font has (lowercase letters, drawn as capitals; digits; hyphen; space)."""


def text_width(text: str, scale: int) -> int:
    """Pixels from the first glyph's left edge to the last glyph's right edge."""
    return max(0, (len(text) * ADVANCE - 1) * scale)


def draw_text(draw: ImageDraw.ImageDraw, x: int, y: int, text: str, scale: int, fill: tuple[int, int, int]) -> None:
    """Draw `text` with its top-left corner at (x, y), each font pixel a `scale` x `scale` square."""
    unknown = sorted(set(text) - DRAWABLE)
    if unknown:
        raise ValueError(f"the bitmap font has no glyph for {unknown}; it draws {''.join(sorted(DRAWABLE))!r}")
    if scale < 1:
        raise ValueError(f"scale={scale}: glyphs are drawn at a whole number of pixels per font pixel, at least 1")
    for k, char in enumerate(text):
        left = x + k * ADVANCE * scale
        for row, bits in enumerate(_ROWS[char]):
            for col, bit in enumerate(bits):
                if bit == "1":
                    x0, y0 = left + col * scale, y + row * scale
                    draw.rectangle((x0, y0, x0 + scale - 1, y0 + scale - 1), fill=fill)
