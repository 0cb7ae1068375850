"""Opening the dashboard in Streamlit's AppTest on a workdir, and finding its widgets by label."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.workdir import WORKDIR_ENV

APP = Path(__file__).parents[2] / "dashboards" / "app.py"
DEFAULT_PAGE = "views/models.py"
TIMEOUT_S = 120  # the first run imports MLflow; the machine may be busy


def open_app(monkeypatch: pytest.MonkeyPatch, workdir: Path, page: str) -> AppTest:
    monkeypatch.setenv(WORKDIR_ENV, str(workdir))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    if page != DEFAULT_PAGE:
        app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def selectbox(app: AppTest, label: str):
    return next(box for box in app.selectbox if box.label == label)
