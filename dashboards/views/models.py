"""Models: each registered model, its production version, its versions with key metrics (and the charts of
the latest version's feedback, text-only, reading, instruction-task and generation figures and a generator's samples,
where it has them), its alias events."""

import pandas as pd
import streamlit as st

from dashboards.evaluation_charts import CHARTS
from dashboards.models_overview import model_overview, sample_preview, timeline_table, version_table
from dashboards.page_setup import (
    current_aliases,
    mlflow_warning,
    models_or_stop,
    open_stores,
)

st.title("Models")
stores = open_stores()
mlflow_warning(stores, "Aliases other than production")
with stores.lineage.session() as session:
    names = models_or_stop(session, stores.settings)
    aliases = current_aliases(stores, session, names)
    overviews = [model_overview(session, name, aliases[name]) for name in names]

for overview in overviews:
    st.header(overview.name, divider="gray")
    st.metric("production version", "none" if overview.production is None else f"v{overview.production}")
    st.subheader("Versions")
    st.dataframe(version_table(overview), hide_index=True)
    latest = overview.versions[-1].metrics if overview.versions else {}
    for chart in CHARTS:
        if rows := chart.rows(latest):
            st.subheader(f"{chart.title}, v{overview.versions[-1].version}")
            st.caption(chart.caption)
            frame = pd.DataFrame(rows).set_index(chart.index)
            if chart.horizontal:
                st.bar_chart(frame, horizontal=True)
            else:
                st.bar_chart(frame, stack=False)
    if stores.mlflow is not None and "generation_accuracy" in latest:
        if (gif := sample_preview(stores.mlflow, overview.name, overview.versions[-1].version)) is not None:
            st.subheader(f"Samples, v{overview.versions[-1].version}")
            st.caption("Real test videos in the first row, then one sample per caption at each guidance scale")
            st.image(gif)
    st.subheader("Alias events")
    if overview.timeline:
        st.dataframe(timeline_table(overview.timeline), hide_index=True)
        with st.expander("gate evidence of each event"):
            for event in overview.timeline:
                st.caption(f"{event.action} {event.alias} -> v{event.version} by {event.actor}")
                st.json(event.evidence, expanded=False)
    else:
        st.caption("No alias events yet: no version has been promoted.")
