"""The Runs page's data: two model versions side by side — stage metric curves from MLflow, recipe, data and metric diffs.

The diffs come from the lineage store (registry.lineage.diff_versions); the
curves from MLflow's metric history of each stage run in a version's
ancestry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlflow import MlflowClient

from dashboards.display import number_text, short_hash
from registry.lineage import AncestryNode, DataDiff, DatasetNode, MetricDelta, StageNode

DEFAULT_METRIC = "train/loss"


@dataclass(frozen=True)
class CurvePoint:
    version: str  # the model version, as 'v2'
    stage: str  # the stage's label (see stage_runs)
    step: int
    value: float


def ancestry_stages(root: AncestryNode) -> list[StageNode]:
    """Every stage run in a version's ancestry, parent models' included, each once, in training order."""
    found: dict[tuple[str, str], StageNode] = {}
    pending = [root.checkpoint.stage]
    while pending:
        stage = pending.pop()
        key = (stage.pipeline.mlflow_run_id, stage.name)
        if key in found:
            continue
        found[key] = stage
        pending += [checkpoint.stage for checkpoint in stage.parent_checkpoints.values()]
        pending += [model.checkpoint.stage for model in stage.parent_models.values()]
    return sorted(found.values(), key=lambda s: (s.pipeline.started_at, s.pipeline.mlflow_run_id, s.position))


def stage_runs(root: AncestryNode) -> dict[str, str]:
    """Stage label -> MLflow run id, for each stage in the ancestry that has an MLflow run.

    A stage of the version's own pipeline is labelled by its name; a stage of a
    parent model's pipeline by its name and that pipeline's recipe.
    """
    runs = {}
    for stage in ancestry_stages(root):
        if stage.mlflow_run_id is None:
            continue
        own = stage.pipeline.mlflow_run_id == root.pipeline.mlflow_run_id
        runs[stage.name if own else f"{stage.name} ({stage.pipeline.recipe.name})"] = stage.mlflow_run_id
    return runs


def metric_names(client: MlflowClient, run_ids: Iterable[str]) -> list[str]:
    """Every metric any of the runs logged, sorted, the default training loss first."""
    names = {name for run_id in set(run_ids) for name in client.get_run(run_id).data.metrics}
    return sorted(names, key=lambda name: (name != DEFAULT_METRIC, name))


def metric_curves(client: MlflowClient, runs_by_version: Mapping[str, Mapping[str, str]], metric: str) -> list[CurvePoint]:
    """Each version's stage runs' history of one metric; runs_by_version is version -> stage label -> run id.

    Points come stage by stage, in the order the stages first appear (training order), then by version and step.
    """
    stages = list(dict.fromkeys(stage for runs in runs_by_version.values() for stage in runs))
    points = [
        CurvePoint(f"v{version}", stage, point.step, point.value)
        for version, runs in runs_by_version.items()
        for stage, run_id in runs.items()
        for point in client.get_metric_history(run_id, metric)
    ]
    return sorted(points, key=lambda p: (stages.index(p.stage), p.version, p.step))


def data_diff_rows(diff: DataDiff) -> list[dict[str, str]]:
    """One row a dataset that one version trained on and the other did not, or trained on in another version."""
    rows = [{"change": "added", "dataset": d.name, "a": "-", "b": _dataset_text([d])} for d in diff.added]
    rows += [{"change": "removed", "dataset": d.name, "a": _dataset_text([d]), "b": "-"} for d in diff.removed]
    rows += [
        {"change": "changed", "dataset": c.name, "a": _dataset_text(c.a), "b": _dataset_text(c.b)}
        for c in diff.changed
    ]
    return rows


def metric_delta_rows(metrics: Mapping[str, MetricDelta]) -> list[dict[str, str]]:
    """One row an evaluation metric: its value in each version and b - a."""
    return [
        {
            "metric": name,
            "a": "-" if delta.a is None else number_text(delta.a),
            "b": "-" if delta.b is None else number_text(delta.b),
            "b - a": "-" if delta.delta is None else f"{delta.delta:+.4f}",
        }
        for name, delta in metrics.items()
    ]


def _dataset_text(datasets: Iterable[DatasetNode]) -> str:
    return ", ".join(f"md5 {d.md5} (git {short_hash(d.git_rev)})" for d in datasets)
