"""Models: each registered model, its production version, its versions with key metrics (and the charts of
the latest version's feedback, text-only, reading and instruction-task figures, where it has them), its alias events."""

import pandas as pd
import streamlit as st

from dashboards.evaluation_charts import feedback_rounds, ofa_task_bars, reading_bars, text_only_bars
from dashboards.models_overview import model_overview, timeline_table, version_table
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
    if rows := feedback_rounds(latest):
        st.subheader(f"Answers after feedback, v{overview.versions[-1].version}")
        st.caption("VQA exact match as the critic's feedback comes in, round by round (round 0: before any)")
        st.bar_chart(pd.DataFrame(rows).set_index("round"), stack=False)
    if rows := text_only_bars(latest):
        st.subheader(f"Text-only answers, v{overview.versions[-1].version}")
        st.caption("The test questions asked with no image, after the scene's caption: what multimodal training kept of the LM's text skill")
        st.bar_chart(pd.DataFrame(rows).set_index("questions"), stack=False)
    if rows := reading_bars(latest):
        st.subheader(f"Reading text pages, v{overview.versions[-1].version}")
        st.caption("Every test page read by both task prompts: <ocr> text blocks with their boxes, <md> markdown")
        st.bar_chart(pd.DataFrame(rows).set_index("figure"), horizontal=True)
    if rows := ofa_task_bars(latest):
        st.subheader(f"Instruction tasks, v{overview.versions[-1].version}")
        st.caption("One encoder-decoder, each kind of instruction scored on the test split (the infilling preview is in the run's evaluation artifacts)")
        st.bar_chart(pd.DataFrame(rows).set_index("figure"), horizontal=True)
    st.subheader("Alias events")
    if overview.timeline:
        st.dataframe(timeline_table(overview.timeline), hide_index=True)
        with st.expander("gate evidence of each event"):
            for event in overview.timeline:
                st.caption(f"{event.action} {event.alias} -> v{event.version} by {event.actor}")
                st.json(event.evidence, expanded=False)
    else:
        st.caption("No alias events yet: no version has been promoted.")
