"""Which workdir the dashboard reads, and its settings as they may be shown to people.

`mmops dashboard --workdir DIR` passes the workdir to the Streamlit app in
the environment variable below; the other settings come from the same MMOPS_
variables as every other command (mmops/settings.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mmops.settings import Settings
from mmops.redaction import redact

WORKDIR_ENV = "MMOPS_DASHBOARD_WORKDIR"
DEFAULT_WORKDIR = "mmops-work"


def dashboard_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of the workdir named by MMOPS_DASHBOARD_WORKDIR (default ./mmops-work)."""
    env = os.environ if env is None else env
    return Settings.for_workdir(env.get(WORKDIR_ENV) or DEFAULT_WORKDIR, env=env)


def shown_settings(settings: Settings) -> dict[str, str]:
    """Where the dashboard reads from, passwords in URLs replaced by ***."""
    return {
        "workdir": str(settings.workdir),
        "lineage store": redact(settings.lineage_url),
        "MLflow tracking": redact(settings.tracking_uri),
    }
