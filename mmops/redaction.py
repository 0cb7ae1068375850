"""Secrets kept out of what people see: passwords (and query secrets) in URLs."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

HIDDEN = "***"


def redact(url: str) -> str:
    """The URL as it may be shown to people: any password (and a query's secrets) replaced by ***."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = re.sub(r"(://[^:/@]*:)[^@/]*@", rf"\1{HIDDEN}@", url)
    return re.sub(r"((?:password|secret|token)[^=&]*=)[^&]*", rf"\1{HIDDEN}", shown, flags=re.IGNORECASE)
