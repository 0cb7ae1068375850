"""Lineage: a model version's ancestry drawn as a graph; the selected node's details beside it."""

import streamlit as st

from dashboards.lineage_graph import lineage_graph, to_dot
from dashboards.models_overview import version_numbers
from dashboards.page_setup import (
    current_aliases,
    mlflow_warning,
    models_or_stop,
    open_stores,
)
from registry.lineage import ancestry, production_version

st.title("Lineage")
stores = open_stores()
mlflow_warning(stores, "Aliases other than production")
with stores.lineage.session() as session:
    names = models_or_stop(session, stores.settings)
    name = st.selectbox("model", names)
    versions = version_numbers(session, name)
    production = production_version(session, name)
    in_production = None if production is None else production.version
    version = st.selectbox(
        "version",
        versions,
        index=versions.index(in_production) if in_production in versions else len(versions) - 1,
        format_func=lambda v: f"v{v} (production)" if v == in_production else f"v{v}",
    )
    root = ancestry(session, name, version)
    aliases = current_aliases(stores, session, names)

if in_production is None:
    st.markdown(f"**{name}** has no version in production.")
else:
    st.markdown(f"Production model: **{name} v{in_production}**")

graph = lineage_graph(root, aliases)
choices = graph.choices()
selected = st.selectbox(
    "node (outlined in red; its details are beside the graph)",
    [node.id for node in choices],
    format_func=lambda node_id: f"{graph.nodes[node_id].kind}: {graph.nodes[node_id].label.replace(chr(10), ' · ')}",
)
drawing, details = st.columns([3, 2])
drawing.graphviz_chart(to_dot(graph, selected), width="stretch")
node = graph.nodes[selected]
details.subheader(node.label.replace("\n", " · "))
details.json(node.details)
