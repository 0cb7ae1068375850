"""Data: dataset versions from the lineage store, and samples of the one on disk with their images and annotations."""

import streamlit as st

from dashboards.dataset_samples import (
    checked_out_md5,
    dataset_folder,
    dataset_versions,
    load_samples,
    object_rows,
    sample_files,
)
from dashboards.display import markdown_literal, short_hash
from dashboards.errors import DashboardError
from dashboards.page_setup import no_runs_yet, open_stores
from dashboards.sample_image import annotated_image

SHOWN_SAMPLES = 4

st.title("Data")
stores = open_stores()
with stores.lineage.session() as session:
    rows = dataset_versions(session)
if not rows:
    no_runs_yet(stores.settings, "the lineage store has no dataset version yet")

st.dataframe(
    [{"dataset": r.name, "md5": r.md5, "git": short_hash(r.git_rev), "created": r.created, "fed": ", ".join(r.model_versions) or "-"}
     for r in rows],
    hide_index=True,
)
row = st.selectbox(
    "dataset version", rows, format_func=lambda r: f"{r.name} md5 {r.md5} (git {short_hash(r.git_rev)}, {r.created})"
)
repo = stores.settings.datasets_repo
on_disk = checked_out_md5(repo, row.name)
if on_disk != row.md5:
    shown = "no version" if on_disk is None else f"version md5 {on_disk}"
    st.info(
        f"`{repo}` holds {shown} of {row.name} on disk, not this one; this version is in the DVC cache and remote. "
        f"To look at it: `cd {repo} && git checkout {short_hash(row.git_rev)} && dvc checkout`."
    )
    st.stop()

try:
    folder = dataset_folder(repo, row.name)
except DashboardError as error:
    st.error(str(error))
    st.stop()
files = sample_files(folder)
if not files:
    st.warning(f"{folder} holds no captions_SPLIT.json, instruct_SPLIT.json or videos_SPLIT.json files.")
    st.stop()
left, middle, right = st.columns(3)
kinds = sorted({kind for kind, _ in files}, reverse=True)  # instruct first: its samples carry the most annotation
kind = left.radio("annotations", kinds, horizontal=True)
splits = sorted(split for k, split in files if k == kind)
split = middle.selectbox("split", splits, index=splits.index("test") if "test" in splits else 0)
start = right.number_input("first sample", min_value=0, value=0, step=SHOWN_SAMPLES)
try:
    samples, total = load_samples(folder, files[(kind, split)], int(start), SHOWN_SAMPLES)
except DashboardError as error:
    st.error(str(error))
    st.stop()
st.caption(f"{files[(kind, split)].name}: samples {int(start)} to {int(start) + len(samples) - 1} of {total}")

for sample in samples:
    st.subheader(sample.id, divider="gray")
    image_column, text_column = st.columns([1, 2])
    if sample.image is None:
        image_column.warning(sample.problem or "no image")
    else:
        try:
            image_column.image(annotated_image(sample.image, sample.objects), caption=sample.image.name, output_format="PNG")
        except DashboardError as error:
            image_column.warning(str(error))
    for speaker, text in sample.turns:
        text_column.markdown(f"**{markdown_literal(speaker)}:** {markdown_literal(text)}")
    if sample.objects:
        text_column.dataframe(object_rows(sample.objects), hide_index=True)
