"""Secrets kept out of what people see: passwords in URLs, and the values of credential variables."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

HIDDEN = "***"
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|SESSION_KEY|ACCESS_KEY)", re.IGNORECASE)
"""Environment variables whose values are never shown (AWS_SECRET_ACCESS_KEY, MLFLOW_TRACKING_PASSWORD, ...)."""


def redact(url: str) -> str:
    """The URL as it may be shown to people: any password (and a query's secrets) replaced by ***."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = re.sub(r"(://[^:/@]*:)[^@/]*@", rf"\1{HIDDEN}@", url)
    return re.sub(r"((?:password|secret|token)[^=&]*=)[^&]*", rf"\1{HIDDEN}", shown, flags=re.IGNORECASE)


def redact_environment(env: dict[str, str]) -> dict[str, str]:
    """Variables as they may be shown: secrets' values hidden, URLs' passwords hidden."""
    return {name: HIDDEN if SECRET_NAME.search(name) else redact(value) if "://" in value else value for name, value in env.items()}
