"""The append-only audit log of promotions and rollbacks: one JSON object a line."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def append_event(log: Path, event: dict[str, Any]) -> dict[str, Any]:
    record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), **event}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return record


def read_events(log: Path, model: str | None = None) -> list[dict[str, Any]]:
    if not log.is_file():
        return []
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [e for e in events if model is None or e.get("model") == model]
