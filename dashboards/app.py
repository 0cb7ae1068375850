"""The dashboard's entry point (`mmops dashboard` runs it with `streamlit run`): the page list and the sidebar.

Each page is a file in views/ that lays out widgets; adding a page is one
more entry in PAGES.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards.page_setup import sidebar_settings

PAGES_DIR = Path(__file__).parent / "views"
PAGES = [
    st.Page(PAGES_DIR / "models.py", title="Models", icon=":material/deployed_code:", default=True),
    st.Page(PAGES_DIR / "lineage.py", title="Lineage", icon=":material/account_tree:"),
    st.Page(PAGES_DIR / "runs.py", title="Runs", icon=":material/monitoring:"),
    st.Page(PAGES_DIR / "data.py", title="Data", icon=":material/image:"),
    st.Page(PAGES_DIR / "promote.py", title="Promote", icon=":material/rocket_launch:"),
    st.Page(PAGES_DIR / "benchmarks.py", title="Benchmarks", icon=":material/speed:"),
]

st.set_page_config(page_title="mmops", page_icon=":material/hub:", layout="wide")
page = st.navigation(PAGES)
sidebar_settings()
page.run()
