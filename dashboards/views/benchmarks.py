"""Benchmarks: the latest figures of `python benchmarks/run_all.py`, each ratio against its goal."""

import streamlit as st

from dashboards.benchmark_figures import RESULTS_ENV, load_figures, ratio_chart, results_folder, table_rows

st.title("Benchmarks")
folder = results_folder()
figures, problems = load_figures(folder)
for problem in problems:
    st.warning(f"{folder}/{problem}")
if not figures:
    st.info(f"No benchmark figures in `{folder}` yet. Run `python benchmarks/run_all.py` on an otherwise idle machine "
            f"(`--quick` for a first look), or point {RESULTS_ENV} at a folder of results.")
    st.stop()

st.caption(f"From `{folder}`, as `python benchmarks/run_all.py` last wrote them. A ratio compares mmops with a reference measured in the same run; the black tick is the goal. "
           "Figures from a busy machine say little.")
st.vega_lite_chart(ratio_chart(figures), width="stretch")
st.dataframe(table_rows(figures), hide_index=True)
chosen = st.selectbox("details of", figures, format_func=lambda f: f.name)
st.json(chosen.details)
