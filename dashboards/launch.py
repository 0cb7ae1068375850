"""How `mmops dashboard` starts the app: `streamlit run app.py` on loopback, the workdir passed in the environment."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from dashboards.workdir import WORKDIR_ENV

APP = Path(__file__).with_name("app.py")
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8501


def streamlit_command(port: int, address: str = LOOPBACK) -> list[str]:
    """The command line that serves the dashboard: headless (no browser opened, no e-mail prompt), no usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless=true",
        f"--server.address={address}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]


def dashboard_environment(workdir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The app's environment: this one, plus the workdir to read (the app reads other settings from MMOPS_ variables)."""
    return {**environ, WORKDIR_ENV: str(workdir)}
