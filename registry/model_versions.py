"""Registered model versions in MLflow: registration with lineage tags, aliases, promotion and rollback.

A version is registered with all its lineage tags in one call, then given the
alias `candidate`; if anything after the registration fails the version is
deleted again, so a failed run never leaves a half-registered model.
Promotions and rollbacks move the alias `production` and append to the audit
log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from components.data.build import TOKENIZER_FILE
from mmops.errors import RegistryError
from mmops.settings import Settings
from registry.audit import append_event, read_events
from registry.lineage.schema import ModelStatus
from registry.tracking import tracking

CANDIDATE, PRODUCTION = "candidate", "production"
WEIGHTS_FILE = "model.safetensors"
STATUS_TAG = "mmops.status"


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: tuple[str, ...]
    evidence: dict[str, Any]


def evaluate_gate(
    thresholds: dict[str, float],
    not_worse_than_production: list[str],
    tolerance: float,
    candidate: dict[str, float],
    production: dict[str, float] | None,
    production_version: str | None = None,
) -> GateDecision:
    """Pass when every threshold is met and no compared metric is worse than production's (minus tolerance)."""
    reasons: list[str] = []
    for metric, minimum in sorted(thresholds.items()):
        value = candidate.get(metric)
        if value is None:
            reasons.append(f"{metric}: not measured (threshold {minimum})")
        elif value < minimum:
            reasons.append(f"{metric}: {value:.4f} < threshold {minimum}")
    if production is not None:
        for metric in not_worse_than_production:
            ours, theirs = candidate.get(metric), production.get(metric)
            if theirs is None:
                continue
            if ours is None or ours < theirs - tolerance:
                reasons.append(f"{metric}: {ours} is worse than production v{production_version}'s {theirs:.4f}")
    evidence = {
        "candidate": {k: candidate.get(k) for k in sorted({*thresholds, *not_worse_than_production})},
        "thresholds": thresholds,
        "production_version": production_version,
        "production": {k: production.get(k) for k in not_worse_than_production} if production else None,
        "tolerance": tolerance,
    }
    return GateDecision(not reasons, tuple(reasons), evidence)


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at (MLflow's ModelVersion.version may be an int: use alias_version for the number)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version number an alias points at, as the string mmops uses everywhere."""
    version = version_by_alias(client, name, alias)
    return None if version is None else str(version.version)


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """The evaluation metrics of the pipeline run that produced a version."""
    return dict(client.get_run(version.run_id).data.metrics) if version.run_id else {}


def register_candidate(client: MlflowClient, name: str, model_uri: str, tags: dict[str, str]) -> ModelVersion:
    """Register a logged model with its lineage tags and the alias `candidate`, all or nothing.

    Call inside registry.tracking.tracking(settings): registration of a logged
    model goes through MLflow's fluent API.
    """
    version = mlflow.register_model(model_uri, name, tags={**tags, STATUS_TAG: CANDIDATE})
    try:
        client.set_registered_model_alias(name, CANDIDATE, version.version)
    except Exception:
        client.delete_model_version(name, version.version)
        raise
    return client.get_model_version(name, version.version)


@dataclass(frozen=True)
class ResolvedModel:
    """A registered version's files, downloaded: its safetensors weights and the tokenizer it was trained with."""

    weights: Path
    tokenizer: Path | None
    version: str
    """'NAME/VERSION'."""


def resolve_model(settings: Settings, uri: str) -> ResolvedModel:
    """Download a registered version (models:/NAME@ALIAS or models:/NAME/VERSION)."""
    with tracking(settings) as client:
        return _resolve_model(client, uri)


def resolve_model_version(settings: Settings, uri: str) -> str:
    """'NAME/VERSION' that `uri` names now, without downloading anything; RegistryError if none."""
    with tracking(settings) as client:
        name, number = _version_number(client, uri)
        return f"{name}/{number}"


def _version_number(client: MlflowClient, uri: str) -> tuple[str, str]:
    version = _named_version(client, uri)
    return version.name, str(version.version)


def _named_version(client: MlflowClient, uri: str) -> ModelVersion:
    """The registered version `uri` (models:/NAME@ALIAS or models:/NAME/VERSION) names now; RegistryError if none."""
    name, _, ref = uri.removeprefix("models:/").partition("@")
    if ref:
        version = version_by_alias(client, name, ref)
        if version is None:
            raise RegistryError(f"{uri}: model {name!r} has no version with alias {ref!r}")
        return version
    name, _, number = uri.removeprefix("models:/").partition("/")
    return get_version(client, name, number)


LOGGED_SOURCES = ("models:/", "runs:/")
"""Where a version's files may come from: a model or run logged to the tracking server's artifact store."""


def _resolve_model(client: MlflowClient, uri: str) -> ResolvedModel:
    version = _named_version(client, uri)
    name, number, source = version.name, str(version.version), version.source
    if not source.startswith(LOGGED_SOURCES):
        raise RegistryError(
            f"{uri} (version {number}): its source {source!r} is not a logged model; mmops downloads only versions whose "
            f"files are in the tracking server's artifact store ({', '.join(LOGGED_SOURCES)}), never a path or URL a version names"
        )
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{number}"))
    found = sorted(local.rglob(WEIGHTS_FILE))
    if not found:
        raise RegistryError(f"{uri} (version {number}) holds no {WEIGHTS_FILE}")
    tokenizers = sorted(local.rglob(TOKENIZER_FILE))
    return ResolvedModel(found[0], tokenizers[0] if tokenizers else None, f"{name}/{number}")


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        known = ", ".join(sorted((str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int)) or "none"
        raise RegistryError(f"model {name!r} has no version {version!r} (versions: {known})") from None


def promote(
    client: MlflowClient, audit_log: Path, name: str, version: str, reason: str, actor: str, evidence: dict | None = None
) -> dict[str, Any]:
    """Point `production` at a version; the one it replaces is archived; the event goes to the audit log."""
    if not reason.strip():
        raise RegistryError("a promotion needs a reason (--reason '...')")
    target = str(get_version(client, name, version).version)
    previous = alias_version(client, name, PRODUCTION)
    client.set_registered_model_alias(name, PRODUCTION, target)
    client.set_model_version_tag(name, target, STATUS_TAG, PRODUCTION)
    if previous is not None and previous != target:
        client.set_model_version_tag(name, previous, STATUS_TAG, ModelStatus.ARCHIVED)
    return append_event(
        audit_log,
        {
            "action": "promote",
            "model": name,
            "version": target,
            "previous": previous,
            "actor": actor,
            "reason": reason,
            "evidence": evidence or {},
        },
    )


def production_history(audit_log: Path, name: str) -> list[str]:
    """The stack of production versions: promotions push, rollbacks pop."""
    stack: list[str] = []
    for event in read_events(audit_log, name):
        if event["action"] == "promote" and (not stack or stack[-1] != event["version"]):
            stack.append(event["version"])
        elif event["action"] == "rollback" and stack:
            stack.pop()
    return stack


def rollback_target(client: MlflowClient, audit_log: Path, name: str) -> tuple[str, str]:
    """(current production version, the version a rollback returns to), or a RegistryError saying why there is none."""
    current = alias_version(client, name, PRODUCTION)
    if current is None:
        raise RegistryError(f"model {name!r} has no production version to roll back")
    history = production_history(audit_log, name)
    if len(history) < 2 or history[-1] != current:
        raise RegistryError(f"model {name!r}: no earlier production version to return to (history: {history or 'empty'})")
    return current, history[-2]


def rollback(
    client: MlflowClient, audit_log: Path, name: str, reason: str, actor: str, target: str | None = None
) -> dict[str, Any]:
    """Return `production` to the version that held it before the current one (per the audit log,
    unless the caller, holding a fuller history, names the `target`)."""
    if not reason.strip():
        raise RegistryError("a rollback needs a reason (--reason '...')")
    if target is None:
        current, target = rollback_target(client, audit_log, name)
    else:
        current = alias_version(client, name, PRODUCTION)
        if current is None:
            raise RegistryError(f"model {name!r} has no production version to roll back")
        target = str(get_version(client, name, target).version)
    client.set_registered_model_alias(name, PRODUCTION, target)
    client.set_model_version_tag(name, target, STATUS_TAG, PRODUCTION)
    client.set_model_version_tag(name, current, STATUS_TAG, ModelStatus.ARCHIVED)  # as the lineage store records it
    return append_event(
        audit_log,
        {"action": "rollback", "model": name, "version": target, "previous": current, "actor": actor, "reason": reason},
    )

