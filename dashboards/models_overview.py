"""The Models page's data: each registered model, its production version, its versions with key metrics, its alias events."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboards.display import number_text, utc_text
from registry.lineage import (
    AliasChange,
    Evaluation,
    ModelVersion,
    alias_timeline,
    production_version,
)

PREVIEW_ARTIFACT = "evaluation/samples.gif"
COUNT_SUFFIX = "_items"  # evaluation metrics that count items rather than score them


@dataclass(frozen=True)
class VersionRow:
    version: str
    status: str
    created: str
    aliases: tuple[str, ...]  # the MLflow aliases pointing at this version now
    metrics: dict[str, float]


@dataclass(frozen=True)
class ModelOverview:
    name: str
    production: str | None  # the version the lineage store says is in production
    versions: tuple[VersionRow, ...]  # oldest first
    timeline: tuple[AliasChange, ...]  # oldest first


def model_names(session: Session) -> list[str]:
    """The names of every model with a version in the lineage store."""
    return list(session.scalars(select(ModelVersion.name).distinct().order_by(ModelVersion.name)))


def version_numbers(session: Session, name: str) -> list[str]:
    """A model's version numbers, oldest first."""
    return sorted(session.scalars(select(ModelVersion.version).where(ModelVersion.name == name)), key=_version_order)


def key_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The scores of an evaluation: top-level numbers that are not item counts, by name."""
    return {
        key: float(value)
        for key, value in sorted(metrics.items())
        if isinstance(value, int | float) and not isinstance(value, bool) and not key.endswith(COUNT_SUFFIX)
    }


def mlflow_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """alias -> version number, as MLflow's registry holds them now; empty when MLflow does not know the model."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return {}
    return {alias: str(version) for alias, version in sorted(model.aliases.items())}


def model_overview(session: Session, name: str, aliases: Mapping[str, str]) -> ModelOverview:
    rows = session.execute(
        select(ModelVersion, Evaluation.metrics)
        .outerjoin(Evaluation, Evaluation.id == ModelVersion.evaluation_id)
        .where(ModelVersion.name == name)
    ).all()
    versions = [
        VersionRow(
            version=model.version,
            status=model.status,
            created=utc_text(model.created_at),
            aliases=tuple(alias for alias, number in aliases.items() if number == model.version),
            metrics=key_metrics(metrics or {}),
        )
        for model, metrics in rows
    ]
    production = production_version(session, name)
    return ModelOverview(
        name=name,
        production=None if production is None else production.version,
        versions=tuple(sorted(versions, key=lambda row: _version_order(row.version))),
        timeline=alias_timeline(session, name),
    )


def version_table(overview: ModelOverview) -> list[dict[str, str]]:
    """One row a version: number, status, aliases, creation time, then each key metric."""
    return [
        {
            "version": row.version,
            "status": row.status,
            "aliases": ", ".join(row.aliases) or "-",
            "created": row.created,
            **{metric: number_text(value) for metric, value in row.metrics.items()},
        }
        for row in overview.versions
    ]


def timeline_table(timeline: tuple[AliasChange, ...]) -> list[dict[str, str]]:
    """One row an alias event, oldest first."""
    return [
        {
            "when": utc_text(event.at),
            "alias": event.alias,
            "action": event.action,
            "version": event.version or "-",
            "previous": event.previous or "-",
            "actor": event.actor,
            "reason": event.reason,
        }
        for event in timeline
    ]


def sample_preview(client: MlflowClient, name: str, version: str) -> bytes | None:
    """The animated sample grid a generator's evaluation logged (real videos above the samples at each guidance scale),
    or None when the version has none or MLflow cannot give it."""
    try:
        run_id = client.get_model_version(name, version).run_id
        with tempfile.TemporaryDirectory() as folder:
            return Path(client.download_artifacts(run_id, PREVIEW_ARTIFACT, folder)).read_bytes()
    except (MlflowException, OSError):
        return None


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (2**63, version)
