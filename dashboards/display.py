"""How values are written for people on every page: times in UTC, hashes shortened, numbers rounded."""

from __future__ import annotations

from datetime import datetime

SHORT_HASH = 12


def utc_text(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def short_hash(value: str | None) -> str:
    return "" if not value else value[:SHORT_HASH]


def number_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


_MARKDOWN_SPECIAL = "\\`*_[]()<>~$|#!"


def markdown_literal(text: str) -> str:
    """Text from a data file, escaped so that Streamlit's markdown shows it as written (no links, images, maths)."""
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in text)
