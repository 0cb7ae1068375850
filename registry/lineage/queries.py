"""Questions asked of the lineage store: a version's ancestry, a dataset's descendants, diffs, alias history.

Each takes a Session and returns frozen dataclasses (registry/lineage/nodes.py)
or, for production_version, the ModelVersion row that recording functions take.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeGuard

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from registry.lineage.errors import LineageError
from registry.lineage.graph import dataset_node, load_ancestry, reachable_stages
from registry.lineage.nodes import (
    AliasChange,
    AncestryNode,
    CheckpointRef,
    DataDiff,
    DatasetChange,
    DatasetNode,
    Descendants,
    MetricDelta,
    ModelVersionRef,
    StageRef,
    VersionDiff,
)
from registry.lineage.recording import find_model_version, unknown_model
from registry.lineage.schema import (
    AliasAction,
    AliasEvent,
    Checkpoint,
    DatasetVersion,
    ModelStatus,
    ModelVersion,
    PipelineRun,
    Recipe,
    StageDataset,
    StageRun,
)

SHOWN_DATASETS = 20


def ancestry(session: Session, name: str, version: str) -> AncestryNode:
    """Everything a model version came from, as one tree (see registry/lineage/graph.py for how it is loaded)."""
    return load_ancestry(session, find_model_version(session, name, version))


def ancestry_dict(session: Session, name: str, version: str) -> dict[str, Any]:
    """The ancestry as JSON-ready data, timestamps as ISO 8601 strings."""
    return asdict(ancestry(session, name, version), dict_factory=_json_ready)


def dataset_descendants(session: Session, md5: str) -> Descendants:
    """Every stage run, checkpoint and model version a dataset version (by DVC md5) fed, however indirectly."""
    datasets = session.scalars(
        select(DatasetVersion)
        .where(DatasetVersion.md5 == md5)
        .order_by(DatasetVersion.id)
    ).all()
    if not datasets:
        raise _unknown_dataset(session, md5)
    anchor = select(StageDataset.stage_run_id.label("id")).where(
        StageDataset.dataset_version_id.in_([d.id for d in datasets])
    )
    found = reachable_stages(session, anchor, upward=False)
    stages = {
        stage.id: StageRef(
            run_id,
            stage.name,
            stage.objective,
            stage.position,
            stage.status,
            stage.mlflow_run_id,
        )
        for stage, run_id in session.execute(
            select(StageRun, PipelineRun.mlflow_run_id)
            .join(PipelineRun, PipelineRun.id == StageRun.pipeline_run_id)
            .where(StageRun.id.in_(found))
            .order_by(StageRun.pipeline_run_id, StageRun.position)
        ).all()
    }
    checkpoints = session.scalars(
        select(Checkpoint)
        .where(Checkpoint.stage_run_id.in_(stages))
        .order_by(Checkpoint.id)
    ).all()
    models = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.checkpoint_id.in_([c.id for c in checkpoints]))
        .order_by(ModelVersion.id)
    ).all()
    return Descendants(
        datasets=tuple(dataset_node(d) for d in datasets),
        stages=tuple(stages.values()),
        checkpoints=tuple(
            CheckpointRef(
                c.path,
                c.sha256,
                stages[c.stage_run_id].name,
                stages[c.stage_run_id].pipeline_mlflow_run_id,
            )
            for c in checkpoints
        ),
        model_versions=tuple(
            ModelVersionRef(m.name, m.version, m.status) for m in models
        ),
    )


def diff_versions(session: Session, name: str, a: str, b: str) -> VersionDiff:
    """How version b differs from version a: recipe text, training data by dataset name, evaluation metrics."""
    old, new = ancestry(session, name, a), ancestry(session, name, b)
    old_recipe, new_recipe = old.pipeline.recipe, new.pipeline.recipe
    texts = dict(
        session.execute(
            select(Recipe.sha256, Recipe.text).where(
                Recipe.sha256.in_([old_recipe.sha256, new_recipe.sha256])
            )
        ).all()
    )
    recipe_diff = difflib.unified_diff(
        texts[old_recipe.sha256].splitlines(keepends=True),
        texts[new_recipe.sha256].splitlines(keepends=True),
        fromfile=f"{name} v{a}: recipe {old_recipe.name} ({old_recipe.sha256[:12]})",
        tofile=f"{name} v{b}: recipe {new_recipe.name} ({new_recipe.sha256[:12]})",
    )
    return VersionDiff(
        name, a, b, "".join(recipe_diff), _data_diff(old, new), _metric_diff(old, new)
    )


def alias_timeline(session: Session, name: str) -> tuple[AliasChange, ...]:
    """A model's alias events, oldest first."""
    current, previous = aliased(ModelVersion), aliased(ModelVersion)
    rows = session.execute(
        select(AliasEvent, current.version, previous.version)
        .outerjoin(current, current.id == AliasEvent.model_version_id)
        .outerjoin(previous, previous.id == AliasEvent.previous_version_id)
        .where(AliasEvent.model_name == name)
        .order_by(AliasEvent.id)
    ).all()
    timeline = tuple(
        AliasChange(
            event.at,
            event.alias,
            event.action,
            version,
            before,
            event.actor,
            event.reason,
            event.evidence,
        )
        for event, version, before in rows
    )
    if not timeline:
        _require_model(session, name)
    return timeline


def production_version(session: Session, name: str) -> ModelVersion | None:
    """The version the last promotion or rollback of `production` pointed at, unless archived since; None if none."""
    latest = session.scalars(
        select(ModelVersion)
        .join(AliasEvent, AliasEvent.model_version_id == ModelVersion.id)
        .where(
            AliasEvent.model_name == name,
            AliasEvent.alias == ModelStatus.PRODUCTION,
            AliasEvent.action.in_([AliasAction.PROMOTE, AliasAction.ROLLBACK]),
        )
        .order_by(AliasEvent.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        _require_model(session, name)
        return None
    return latest if latest.status == ModelStatus.PRODUCTION else None


def production_stack(session: Session, name: str) -> list[str]:
    """The versions that held `production`, oldest first, as promotions push and rollbacks pop them:
    a rollback returns to the version below the top."""
    rows = session.execute(
        select(AliasEvent.action, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == AliasEvent.model_version_id)
        .where(
            AliasEvent.model_name == name,
            AliasEvent.alias == ModelStatus.PRODUCTION,
            AliasEvent.action.in_([AliasAction.PROMOTE, AliasAction.ROLLBACK]),
        )
        .order_by(AliasEvent.id)
    ).all()
    stack: list[str] = []
    for action, version in rows:
        if action == AliasAction.PROMOTE and (not stack or stack[-1] != version):
            stack.append(version)
        elif action == AliasAction.ROLLBACK and stack:
            stack.pop()
            if not stack or stack[-1] != version:  # a rollback past what this store saw
                stack.append(version)
    return stack


def _data_diff(old: AncestryNode, new: AncestryNode) -> DataDiff:
    before, after = _by_name(old.training_datasets()), _by_name(new.training_datasets())
    return DataDiff(
        added=tuple(
            d for name in sorted(after.keys() - before.keys()) for d in after[name]
        ),
        removed=tuple(
            d for name in sorted(before.keys() - after.keys()) for d in before[name]
        ),
        # The md5 is the data's identity: the same content committed at another git revision is no change.
        changed=tuple(
            DatasetChange(name, before[name], after[name])
            for name in sorted(before.keys() & after.keys())
            if {d.md5 for d in before[name]} != {d.md5 for d in after[name]}
        ),
    )


def _by_name(datasets: frozenset[DatasetNode]) -> dict[str, tuple[DatasetNode, ...]]:
    grouped: dict[str, list[DatasetNode]] = {}
    for dataset in sorted(datasets, key=lambda d: (d.name, d.md5, d.git_rev)):
        grouped.setdefault(dataset.name, []).append(dataset)
    return {name: tuple(found) for name, found in grouped.items()}


def _metric_diff(old: AncestryNode, new: AncestryNode) -> dict[str, MetricDelta]:
    before = _flat(old.evaluation.metrics if old.evaluation else {})
    after = _flat(new.evaluation.metrics if new.evaluation else {})
    deltas = {}
    for metric in sorted(before.keys() | after.keys()):
        a, b = before.get(metric), after.get(metric)
        delta = b - a if _is_number(a) and _is_number(b) else None
        deltas[metric] = MetricDelta(a, b, delta)
    return deltas


def _is_number(value: object) -> TypeGuard[float]:
    # bool is an int to Python, but True - False is no metric delta.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flat(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metric groups (per question type, ...) as dotted names: {'vqa': {'count': 1}} -> {'vqa.count': 1}."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _json_ready(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in items
    }


def _require_model(session: Session, name: str) -> None:
    if not session.scalar(select(exists().where(ModelVersion.name == name))):
        raise unknown_model(session, name)


def _unknown_dataset(session: Session, md5: str) -> LineageError:
    known = session.execute(
        select(DatasetVersion.name, DatasetVersion.md5)
        .distinct()
        .order_by(DatasetVersion.name, DatasetVersion.md5)
    ).all()
    shown = ", ".join(f"{n} {m}" for n, m in known[:SHOWN_DATASETS])
    more = (
        f" and {len(known) - SHOWN_DATASETS} more"
        if len(known) > SHOWN_DATASETS
        else ""
    )
    return LineageError(
        f"no dataset version with md5 {md5!r} in the lineage store (known: {shown or 'none'}{more})"
    )
