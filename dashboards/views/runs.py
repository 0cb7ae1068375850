"""Runs: two versions of a model compared — stage metric curves, recipe diff, data diff, evaluation metrics."""

import pandas as pd
import streamlit as st

from dashboards.display import short_hash
from dashboards.models_overview import version_numbers
from dashboards.page_setup import mlflow_warning, models_or_stop, open_stores
from dashboards.run_compare import (
    data_diff_rows,
    metric_curves,
    metric_delta_rows,
    metric_names,
    stage_runs,
)
from registry.lineage import ancestry, diff_versions

st.title("Runs")
stores = open_stores()
with stores.lineage.session() as session:
    names = models_or_stop(session, stores.settings)
    name = st.selectbox("model", names)
    versions = version_numbers(session, name)
    if len(versions) < 2:
        st.info(f"{name} has one version (v{versions[0]}); run its recipe again to have two to compare.")
        st.stop()
    left, right = st.columns(2)
    a = left.selectbox("version a", versions, index=len(versions) - 2, format_func=lambda v: f"v{v}")
    b = right.selectbox("version b", versions, index=len(versions) - 1, format_func=lambda v: f"v{v}")
    if a == b:
        st.info("Pick two different versions to compare.")
        st.stop()
    roots = {a: ancestry(session, name, a), b: ancestry(session, name, b)}
    diff = diff_versions(session, name, a, b)

st.header("Metric curves", divider="gray")
mlflow_warning(stores, "Metric curves")
if stores.mlflow is not None:
    runs = {version: stage_runs(root) for version, root in roots.items()}
    metrics = metric_names(stores.mlflow, [run for stages in runs.values() for run in stages.values()])
    metric = st.selectbox("metric", metrics)
    points = pd.DataFrame(metric_curves(stores.mlflow, runs, metric), columns=["version", "stage", "step", "value"])
    if points.empty:
        st.caption(f"No stage run logged {metric}.")
    columns = st.columns(2)
    for number, (stage, curve) in enumerate(points.groupby("stage", sort=False)):
        column = columns[number % 2]
        column.subheader(f"stage {stage}")
        column.line_chart(curve, x="step", y="value", color="version", x_label="step", y_label=metric, height=260)

st.header("Recipe diff", divider="gray")
recipe_a, recipe_b = roots[a].pipeline.recipe, roots[b].pipeline.recipe
if diff.recipe:
    st.code(diff.recipe, language="diff")
else:
    st.info(f"Both versions ran the same recipe: {recipe_a.name} (sha256 {short_hash(recipe_a.sha256)}).")

st.header("Data diff", divider="gray")
data_rows = data_diff_rows(diff.data)
if data_rows:
    st.dataframe(data_rows, hide_index=True)
else:
    st.info("Both versions trained on the same dataset versions.")

st.header("Evaluation metrics", divider="gray")
st.dataframe(metric_delta_rows(diff.metrics), hide_index=True)
