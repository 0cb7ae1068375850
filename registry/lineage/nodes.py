"""What the lineage queries return: frozen dataclasses, detached from any session.

A model version's ancestry is a tree of these: AncestryNode (the version) ->
CheckpointNode -> StageNode (the stage that produced it) -> its datasets,
parent checkpoints (more CheckpointNodes) and parent model versions (more
AncestryNodes, each with its own full ancestry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetNode:
    name: str
    md5: str
    git_rev: str
    path: str
    produced_by: tuple[StageNode, ...] = field(default=(), compare=False)
    """The data stages that wrote this version (CapFilt), each with its own ancestry; none for a
    generated dataset. Not part of the version's identity: two nodes of one version are equal."""


@dataclass(frozen=True)
class RecipeNode:
    sha256: str
    name: str
    family: str


@dataclass(frozen=True)
class PipelineNode:
    mlflow_run_id: str
    prefect_flow_run_id: str | None
    status: str
    workdir: str
    started_at: datetime
    finished_at: datetime | None
    recipe: RecipeNode
    code_version: str  # the git revision of the code that ran


@dataclass(frozen=True)
class EvaluationNode:
    split: str
    dataset: DatasetNode
    metrics: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class StageNode:
    name: str
    objective: str
    position: int
    status: str
    mlflow_run_id: str | None
    seconds: float | None
    final_loss: float | None
    metrics: dict[str, Any]
    pipeline: PipelineNode
    datasets: tuple[DatasetNode, ...]
    parent_checkpoints: dict[str, CheckpointNode]  # by model part ('vision', '*', ...)
    parent_models: dict[str, AncestryNode]


@dataclass(frozen=True)
class CheckpointNode:
    path: str
    sha256: str
    created_at: datetime
    stage: StageNode  # the stage run that produced it
    evaluations: tuple[EvaluationNode, ...]


@dataclass(frozen=True)
class AncestryNode:
    """A model version and everything it came from."""

    name: str
    version: str
    status: str
    created_at: datetime
    mlflow_run_id: str | None
    pipeline: PipelineNode
    checkpoint: CheckpointNode
    evaluation: EvaluationNode | None

    def training_datasets(self) -> frozenset[DatasetNode]:
        """Every dataset version a stage in this ancestry trained on, parent model versions' included."""
        found: set[DatasetNode] = set()
        pending = [self.checkpoint.stage]
        while pending:
            stage = pending.pop()
            found.update(stage.datasets)
            pending.extend(producer for dataset in stage.datasets for producer in dataset.produced_by)
            pending.extend(
                checkpoint.stage for checkpoint in stage.parent_checkpoints.values()
            )
            pending.extend(
                model.checkpoint.stage for model in stage.parent_models.values()
            )
        return frozenset(found)


@dataclass(frozen=True)
class StageRef:
    pipeline_mlflow_run_id: str
    name: str
    objective: str
    position: int
    status: str
    mlflow_run_id: str | None


@dataclass(frozen=True)
class CheckpointRef:
    path: str
    sha256: str
    stage: str
    pipeline_mlflow_run_id: str


@dataclass(frozen=True)
class ModelVersionRef:
    name: str
    version: str
    status: str


@dataclass(frozen=True)
class Descendants:
    """Everything a dataset version fed, directly or through parent checkpoints and model versions."""

    datasets: tuple[DatasetNode, ...]
    stages: tuple[StageRef, ...]
    checkpoints: tuple[CheckpointRef, ...]
    model_versions: tuple[ModelVersionRef, ...]


@dataclass(frozen=True)
class DatasetChange:
    """A dataset name both versions trained on, in different versions (several when the ancestry holds several)."""

    name: str
    a: tuple[DatasetNode, ...]
    b: tuple[DatasetNode, ...]


@dataclass(frozen=True)
class DataDiff:
    added: tuple[DatasetNode, ...]
    removed: tuple[DatasetNode, ...]
    changed: tuple[DatasetChange, ...]


@dataclass(frozen=True)
class MetricDelta:
    a: float | None
    b: float | None
    delta: float | None  # b - a, when both are numbers


@dataclass(frozen=True)
class VersionDiff:
    name: str
    a: str
    b: str
    recipe: (
        str  # a unified diff of the recipe texts; empty when both ran the same recipe
    )
    data: DataDiff
    metrics: dict[str, MetricDelta]


@dataclass(frozen=True)
class AliasChange:
    at: datetime
    alias: str
    action: str
    version: str | None
    previous: str | None
    actor: str
    reason: str
    evidence: dict[str, Any]
