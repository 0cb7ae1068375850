"""What every page starts with: the workdir's stores opened read-only, or a friendly message saying why not.

The only Streamlit-aware module outside app.py and views/: it turns the
plain modules' errors into messages and stops the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import streamlit as st
from mlflow import MlflowClient
from sqlalchemy.orm import Session

from dashboards.errors import DashboardError, StoreMissing
from dashboards.models_overview import mlflow_aliases, model_names
from dashboards.read_only import LineageReader, tracking_reader
from dashboards.workdir import dashboard_settings, shown_settings
from mmops.settings import Settings
from registry.lineage import production_version


@dataclass(frozen=True)
class Stores:
    settings: Settings
    lineage: LineageReader
    mlflow: MlflowClient | None  # None when MLflow cannot be read; mlflow_problem says why
    mlflow_problem: str | None


@st.cache_resource(show_spinner=False)
def _lineage_reader(url: str) -> LineageReader:
    return LineageReader(url)


@st.cache_resource(show_spinner=False)
def _tracking_reader(uri: str) -> MlflowClient:
    return tracking_reader(uri)


def open_stores() -> Stores:
    """The stores of the workdir this dashboard was started on; stops the page with a message when there are none."""
    settings = dashboard_settings()
    try:
        lineage = _lineage_reader(settings.lineage_url)
    except StoreMissing as missing:
        no_runs_yet(settings, str(missing))
    except DashboardError as error:
        st.error(str(error))
        st.stop()
    try:
        return Stores(settings, lineage, _tracking_reader(settings.tracking_uri), None)
    except DashboardError as error:
        return Stores(settings, lineage, None, str(error))


def no_runs_yet(settings: Settings, detail: str) -> NoReturn:
    st.info(
        f"No runs yet in `{settings.workdir}`.\n\n"
        f"Run `mmops demo --workdir {settings.workdir}` (or `mmops run RECIPE --workdir {settings.workdir}`) "
        "to train and register a model, then reload this page."
    )
    st.caption(detail)
    st.stop()


def models_or_stop(session: Session, settings: Settings) -> list[str]:
    """The registered models' names; stops the page with the empty state when there are none."""
    names = model_names(session)
    if not names:
        no_runs_yet(settings, "the lineage store has no registered model version yet (did the last run fail before registering?)")
    return names


def current_aliases(stores: Stores, session: Session, names: list[str]) -> dict[str, dict[str, str]]:
    """model name -> alias -> version: MLflow's aliases, or only `production` from the lineage store when MLflow cannot be read."""
    if stores.mlflow is not None:
        return {name: mlflow_aliases(stores.mlflow, name) for name in names}
    found = {}
    for name in names:
        production = production_version(session, name)
        found[name] = {} if production is None else {"production": production.version}
    return found


def mlflow_warning(stores: Stores, what: str) -> None:
    if stores.mlflow_problem:
        st.warning(f"{what} come from MLflow, which cannot be read: {stores.mlflow_problem}")


def sidebar_settings() -> None:
    st.sidebar.caption("Reading, read-only:")
    for label, value in shown_settings(dashboard_settings()).items():
        st.sidebar.caption(f"**{label}**: `{value}`")
