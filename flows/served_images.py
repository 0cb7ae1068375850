"""The image column of a served model's input: a file path, PNG bytes or base64 PNG text, or nothing.

Shared by every registered model's pyfunc code, which MLflow loads on its own,
so it depends on nothing but components.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd

T = TypeVar("T")


def is_missing(value) -> bool:
    """A cell of a served DataFrame with nothing in it: None, or the NaN pandas puts in empty cells."""
    return value is None or (isinstance(value, float) and pd.isna(value))


def read_served_image(value, load: Callable[[Path], T]) -> T | None:
    """`load` applied to the image `value` names or holds; None for a missing value."""
    if is_missing(value):
        return None
    if isinstance(value, str) and Path(value).is_file():
        return load(Path(value))
    if isinstance(value, str):
        try:
            value = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(f"image {value[:40]!r} is neither an existing file nor base64 PNG data") from None
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        handle.write(bytes(value))
        handle.flush()
        return load(Path(handle.name))
