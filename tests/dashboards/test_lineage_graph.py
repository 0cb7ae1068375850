"""The Lineage page's graph and its DOT text, built from hand-made ancestry trees."""

from __future__ import annotations

import re

from ancestry_trees import DATA, bootstrapped, clip_model, llava

from dashboards.lineage_graph import GraphEdge, lineage_graph, to_dot
from registry.lineage import DatasetNode

QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
ALIASES = {"tiny-llava": {"production": "2", "candidate": "2", "previous": "1"}}


def edges(graph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.label) for e in graph.edges}


def test_graph_runs_from_dataset_through_stages_and_evaluation_to_the_version_and_its_aliases():
    graph = lineage_graph(llava(), ALIASES)
    stage = "stage:run-2/{}".format
    data = f"dataset:tiny-shapes@{DATA.md5}@{DATA.git_rev}"
    model, evaluation = "model:tiny-llava/2", "evaluation:tiny-llava/2"
    assert {n.kind for n in graph.nodes.values()} == {"dataset", "stage", "evaluation", "model", "alias", "recipe", "code"}
    assert {(data, stage(name), "") for name in ("clip", "lm", "align", "instruct")} <= edges(graph)
    assert {
        (stage("clip"), stage("align"), "vision"),
        (stage("lm"), stage("align"), "language_model"),
        (stage("align"), stage("instruct"), "whole model"),
        (stage("instruct"), model, "checkpoint"),
        (stage("instruct"), evaluation, ""),
        (data, evaluation, "test"),
        (evaluation, model, "evaluated"),
        (f"recipe:{llava().pipeline.recipe.sha256}", model, "recipe"),
        (f"code:{'c' * 40}", model, "code"),
    } <= edges(graph)
    aliases = {e.target for e in graph.edges if e.to_alias}
    assert aliases == {"alias:tiny-llava@production", "alias:tiny-llava@candidate"}, "an alias on another version is not drawn"
    assert graph.nodes[stage("clip")].details["checkpoint sha256"] == "e" * 64
    assert graph.nodes[evaluation].label.endswith("1 scores"), "item counts and nested groups are not scores"


def test_a_parent_model_version_brings_its_own_ancestry_and_each_node_appears_once():
    graph = lineage_graph(llava(vision_model=clip_model()), {})
    assert ("model:tiny-clip/1", "stage:run-2/align", "vision") in edges(graph)
    assert ("stage:clip-run/contrastive", "model:tiny-clip/1", "checkpoint") in edges(graph)
    assert len([n for n in graph.nodes if n.startswith("recipe:")]) == 2, "each pipeline's recipe"
    assert len(graph.edges) == len(set(graph.edges))
    data_nodes = [n for n in graph.nodes if n.startswith("dataset:")]
    assert len(data_nodes) == 1, "both pipelines trained on one dataset version: one node"


def test_dot_names_every_node_and_edge_and_outlines_only_the_selected_node():
    graph = lineage_graph(llava(), ALIASES)
    dot = to_dot(graph, selected="stage:run-2/align")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert DATA.md5 in dot and 'label="stage clip\\n' in dot
    outlined = [line for line in dot.splitlines() if "penwidth=3" in line]
    assert len(outlined) == 1 and outlined[0].lstrip().startswith('"stage:run-2/align"')
    assert dot.count(" -> ") == len(graph.edges)
    assert '"model:tiny-llava/2" -> "alias:tiny-llava@production" [style=dashed, dir=back];' in dot


def test_dot_escapes_quotes_backslashes_and_newlines_in_names():
    odd = DatasetNode('we"ird\\name\nline', "a" * 32 + ".dir", "b" * 40, "/x")
    dot = to_dot(lineage_graph(llava(data=odd), {}))
    assert 'we\\"ird\\\\name\\nline' in dot
    for line in dot.splitlines():
        assert '"' not in QUOTED.sub("", line), f"unbalanced quotes in {line!r}"


def test_choices_list_the_model_first_and_data_after_stages():
    kinds = [node.kind for node in lineage_graph(llava(), ALIASES).choices()]
    assert kinds[0] == "model" and kinds.index("dataset") > max(i for i, k in enumerate(kinds) if k == "stage")


def test_the_same_edge_is_kept_once():
    graph = lineage_graph(llava(), {})
    count = len(graph.edges)
    graph.connect(GraphEdge(*next(iter(graph.edges)).__dict__.values()))
    assert len(graph.edges) == count


def test_a_dataset_a_data_stage_wrote_hangs_below_that_stage_and_what_it_read():
    graph = lineage_graph(bootstrapped(), {})
    stage = {n.details["stage"]: n.id for n in graph.nodes.values() if n.kind == "stage"}
    data = {n.details["dataset"]: n for n in graph.nodes.values() if n.kind == "dataset"}
    written, noisy = data["tiny-noisy-capfilt"], data["tiny-noisy"]
    assert GraphEdge(stage["capfilt"], written.id, "wrote") in graph.edges
    assert GraphEdge(written.id, stage["retrain"]) in graph.edges
    assert GraphEdge(noisy.id, stage["capfilt"]) in graph.edges and GraphEdge(noisy.id, stage["pretrain"]) in graph.edges
    assert GraphEdge(stage["pretrain"], stage["capfilt"], "whole model") in graph.edges  # the captioner and filter it ran
    assert written.details["written by"] == "stage capfilt (capfilt)" and "checkpoint" not in graph.nodes[stage["capfilt"]].details
    assert "wrote" in to_dot(graph)
