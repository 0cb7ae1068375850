"""The Lineage page's graph: a model version's ancestry as nodes and edges, and as Graphviz DOT text.

Data flows from the top down: dataset versions -> stage runs (each with the
checkpoint it produced; an edge between stages is a checkpoint or a parent
model version handed on, labelled with the model part it initialised) ->
the evaluation -> the model version <- its recipe and code version; the
aliases pointing at a version sit below it. Every node carries the
details the page shows when it is selected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboards.display import short_hash, utc_text
from dashboards.models_overview import key_metrics
from registry.lineage import AncestryNode, CheckpointNode, DatasetNode, EvaluationNode, StageNode

WHOLE_MODEL = "*"  # the part name of a stage that starts the whole model from its parent
KIND_ORDER = ("model", "alias", "evaluation", "stage", "dataset", "recipe", "code")
FILL = {
    "dataset": "#dbeafe",
    "stage": "#fef3c7",
    "evaluation": "#ede9fe",
    "model": "#dcfce7",
    "alias": "#fee2e2",
    "recipe": "#f1f5f9",
    "code": "#f1f5f9",
}


@dataclass(frozen=True)
class GraphNode:
    id: str
    kind: str  # one of KIND_ORDER
    label: str  # as drawn; lines separated by '\n'
    details: dict[str, Any]  # shown when the node is selected


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    label: str = ""
    to_alias: bool = False  # drawn dashed, its arrow pointing from the alias at the version


@dataclass
class LineageGraph:
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[GraphEdge] = field(default_factory=list)

    def add(self, node: GraphNode) -> None:
        self.nodes.setdefault(node.id, node)

    def connect(self, edge: GraphEdge) -> None:
        if edge not in self.edges:
            self.edges.append(edge)

    def choices(self) -> list[GraphNode]:
        """The nodes in the order a picker lists them: models first, then aliases, evaluations, stages, data, recipes, code."""
        return sorted(self.nodes.values(), key=lambda n: (KIND_ORDER.index(n.kind), n.label))


def lineage_graph(root: AncestryNode, aliases: Mapping[str, Mapping[str, str]]) -> LineageGraph:
    """The graph of everything `root` came from; `aliases` is model name -> alias -> version number."""
    builder = _Builder(LineageGraph(), aliases)
    builder.model(root)
    return builder.graph


def to_dot(graph: LineageGraph, selected: str | None = None) -> str:
    """Graphviz DOT text of the graph; the selected node (by id) is outlined."""
    lines = [
        "digraph lineage {",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, color="#64748b"];',
    ]
    for node in graph.nodes.values():
        outline = ', penwidth=3, color="#dc2626"' if node.id == selected else ""
        lines.append(f'  {_quote(node.id)} [label={_quote(node.label)}, fillcolor="{FILL[node.kind]}"{outline}];')
    for edge in graph.edges:
        attributes = [f"label={_quote(edge.label)}"] if edge.label else []
        if edge.to_alias:
            attributes += ["style=dashed", "dir=back"]
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def _part_label(part: str) -> str:
    return "whole model" if part == WHOLE_MODEL else part


@dataclass
class _Builder:
    graph: LineageGraph
    aliases: Mapping[str, Mapping[str, str]]

    def model(self, node: AncestryNode) -> str:
        node_id = f"model:{node.name}/{node.version}"
        if node_id in self.graph.nodes:
            return node_id
        pipeline = node.pipeline
        self.graph.add(GraphNode(node_id, "model", f"{node.name} v{node.version}\n{node.status}", {
            "model": node.name,
            "version": node.version,
            "status": node.status,
            "created": utc_text(node.created_at),
            "MLflow run": node.mlflow_run_id,
            "pipeline run": pipeline.mlflow_run_id,
            "pipeline status": pipeline.status,
            "started": utc_text(pipeline.started_at),
            "finished": utc_text(pipeline.finished_at),
            "Prefect flow run": pipeline.prefect_flow_run_id,
            "checkpoint": node.checkpoint.path,
            "checkpoint sha256": node.checkpoint.sha256,
            "metrics": {} if node.evaluation is None else node.evaluation.metrics,
        }))
        final_stage = self.checkpoint(node.checkpoint)
        self.graph.connect(GraphEdge(final_stage, node_id, "checkpoint"))
        if node.evaluation is not None:
            evaluation = self.evaluation(node, node.evaluation)
            self.graph.connect(GraphEdge(final_stage, evaluation))
            self.graph.connect(GraphEdge(evaluation, node_id, "evaluated"))
        self.graph.connect(GraphEdge(self.recipe(node), node_id, "recipe"))
        self.graph.connect(GraphEdge(self.code(node), node_id, "code"))
        for alias, version in sorted(self.aliases.get(node.name, {}).items()):
            if version == node.version:
                alias_id = f"alias:{node.name}@{alias}"
                self.graph.add(GraphNode(alias_id, "alias", f"@{alias}", {"model": node.name, "alias": alias, "version": version}))
                self.graph.connect(GraphEdge(node_id, alias_id, to_alias=True))
        return node_id

    def checkpoint(self, checkpoint: CheckpointNode) -> str:
        """The node of the stage run that produced the checkpoint (the checkpoint is part of its details)."""
        return self.stage(checkpoint.stage, checkpoint)

    def stage(self, stage: StageNode, checkpoint: CheckpointNode | None = None) -> str:
        """A stage run's node; a data stage (CapFilt) has no checkpoint, and an edge to the dataset it wrote."""
        node_id = f"stage:{stage.pipeline.mlflow_run_id}/{stage.name}"
        if node_id in self.graph.nodes:
            return node_id
        loss = "" if stage.final_loss is None else f"\nloss {stage.final_loss:.4f}"
        written = {} if checkpoint is None else {
            "checkpoint": checkpoint.path,
            "checkpoint sha256": checkpoint.sha256,
            "checkpoint created": utc_text(checkpoint.created_at),
        }
        self.graph.add(GraphNode(node_id, "stage", f"stage {stage.name}\n{stage.objective}{loss}", {
            "stage": stage.name,
            "objective": stage.objective,
            "position": stage.position,
            "status": stage.status,
            "MLflow run": stage.mlflow_run_id,
            "pipeline run": stage.pipeline.mlflow_run_id,
            "recipe": f"{stage.pipeline.recipe.name} ({short_hash(stage.pipeline.recipe.sha256)})",
            "seconds": stage.seconds,
            "final loss": stage.final_loss,
            "metrics": stage.metrics,
            **written,
        }))
        for dataset in stage.datasets:
            self.graph.connect(GraphEdge(self.dataset(dataset), node_id))
        for part, parent in stage.parent_checkpoints.items():
            self.graph.connect(GraphEdge(self.checkpoint(parent), node_id, _part_label(part)))
        for part, model in stage.parent_models.items():
            self.graph.connect(GraphEdge(self.model(model), node_id, _part_label(part)))
        return node_id

    def dataset(self, dataset: DatasetNode) -> str:
        node_id = f"dataset:{dataset.name}@{dataset.md5}@{dataset.git_rev}"
        if node_id in self.graph.nodes:
            return node_id
        self.graph.add(GraphNode(node_id, "dataset", f"{dataset.name}\nmd5 {dataset.md5}\ngit {short_hash(dataset.git_rev)}", {
            "dataset": dataset.name,
            "md5": dataset.md5,
            "git revision": dataset.git_rev,
            "path": dataset.path,
            **({"written by": ", ".join(f"stage {s.name} ({s.objective})" for s in dataset.produced_by)} if dataset.produced_by else {}),
        }))
        for producer in dataset.produced_by:
            self.graph.connect(GraphEdge(self.stage(producer), node_id, "wrote"))
        return node_id

    def evaluation(self, model: AncestryNode, evaluation: EvaluationNode) -> str:
        node_id = f"evaluation:{model.name}/{model.version}"
        scores = len(key_metrics(evaluation.metrics))
        self.graph.add(GraphNode(node_id, "evaluation", f"evaluation\n{evaluation.dataset.name}:{evaluation.split}\n{scores} scores", {
            "split": evaluation.split,
            "dataset": evaluation.dataset.name,
            "dataset md5": evaluation.dataset.md5,
            "created": utc_text(evaluation.created_at),
            "metrics": evaluation.metrics,
        }))
        self.graph.connect(GraphEdge(self.dataset(evaluation.dataset), node_id, evaluation.split))
        return node_id

    def recipe(self, model: AncestryNode) -> str:
        recipe = model.pipeline.recipe
        node_id = f"recipe:{recipe.sha256}"
        self.graph.add(GraphNode(node_id, "recipe", f"recipe {recipe.name}\n{recipe.family}\nsha256 {short_hash(recipe.sha256)}", {
            "recipe": recipe.name,
            "family": recipe.family,
            "sha256": recipe.sha256,
        }))
        return node_id

    def code(self, model: AncestryNode) -> str:
        revision = model.pipeline.code_version
        node_id = f"code:{revision}"
        self.graph.add(GraphNode(node_id, "code", f"code\ngit {short_hash(revision)}", {"git revision": revision}))
        return node_id
