"""`mmops dashboard`: its arguments, the Streamlit command it runs, and the settings the app reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.launch import APP, dashboard_environment, streamlit_command
from dashboards.workdir import WORKDIR_ENV, dashboard_settings, shown_settings
from mmops.cli import build_parser, main


def test_the_dashboard_command_takes_a_workdir_and_a_port():
    args = build_parser().parse_args(["dashboard", "--workdir", "w", "--port", "8765"])
    assert (args.command, args.workdir, args.port) == ("dashboard", "w", 8765)
    assert build_parser().parse_args(["dashboard"]).port == 8501


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_a_port_outside_1_to_65535_is_refused_saying_what_is_allowed(port: str, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["dashboard", "--port", port])
    assert exit_.value.code == 2
    assert f"{port!r} is not a port; allowed: an integer from 1 to 65535" in capsys.readouterr().err


def test_streamlit_serves_the_app_headless_on_loopback():
    command = streamlit_command(8765)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP)] and APP.is_file()
    assert {"--server.headless=true", "--server.address=127.0.0.1", "--server.port=8765", "--browser.gatherUsageStats=false"} <= set(command)


def test_the_app_reads_the_workdir_it_is_given_and_shows_settings_without_passwords(tmp_path: Path):
    env = dashboard_environment(tmp_path / "work", {"MMOPS_TRACKING_URI": "https://bob:s3cret@mlflow.example:5000"})
    settings = dashboard_settings(env)
    assert env[WORKDIR_ENV] == str(tmp_path / "work") and settings.workdir == tmp_path / "work"
    shown = shown_settings(settings)
    assert shown["MLflow tracking"] == "https://bob:***@mlflow.example:5000"
    assert shown["lineage store"] == f"sqlite:///{tmp_path / 'work' / 'lineage.db'}"
    assert "s3cret" not in str(shown)
