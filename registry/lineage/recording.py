"""What a pipeline records as it runs: each function adds nodes and edges in the caller's session.

The caller owns the transaction (LineageStore.session()), so a pipeline can
record a stage, its checkpoint and its model version together or not at all.
Content-addressed nodes (dataset versions, recipes, code versions) are
get-or-create, and safe when two pipelines record the same one at once: the
insert runs in a savepoint, and if another transaction won the race the
savepoint is rolled back and that transaction's row is returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.lineage.errors import LineageError
from registry.lineage.schema import (
    AliasAction,
    AliasEvent,
    Base,
    Checkpoint,
    CodeVersion,
    DatasetProducer,
    DatasetVersion,
    Evaluation,
    ModelStatus,
    ModelVersion,
    PipelineRun,
    Recipe,
    RunStatus,
    StageDataset,
    StageParentCheckpoint,
    StageParentModel,
    StageRun,
    utc_now,
)

Node = TypeVar("Node", bound=Base)
Choice = TypeVar("Choice", bound=StrEnum)


def dataset_version(
    session: Session, name: str, md5: str, git_rev: str, path: str
) -> DatasetVersion:
    return _get_or_create(
        session,
        DatasetVersion,
        {"name": name, "md5": md5, "git_rev": git_rev},
        path=path,
    )


def recipe(session: Session, sha256: str, name: str, family: str, text: str) -> Recipe:
    return _get_or_create(
        session, Recipe, {"sha256": sha256}, name=name, family=family, text=text
    )


def code_version(session: Session, git_rev: str) -> CodeVersion:
    return _get_or_create(session, CodeVersion, {"git_rev": git_rev})


def start_pipeline_run(
    session: Session,
    mlflow_run_id: str,
    recipe: Recipe,
    code_version: CodeVersion,
    workdir: str,
    prefect_flow_run_id: str | None = None,
) -> PipelineRun:
    run = PipelineRun(
        mlflow_run_id=mlflow_run_id,
        prefect_flow_run_id=prefect_flow_run_id,
        recipe_id=recipe.id,
        code_version_id=code_version.id,
        workdir=workdir,
        status=RunStatus.RUNNING,
    )
    return _insert(session, run)


def finish_pipeline_run(
    session: Session, run: PipelineRun, status: str, error: str | None = None
) -> PipelineRun:
    """Close a running pipeline run as 'finished' or 'failed' (with the error people should read)."""
    final = _choice(RunStatus, status, "a pipeline run's final status")
    if final is RunStatus.RUNNING:
        raise LineageError(
            f"pipeline run {run.mlflow_run_id}: final status must be 'finished' or 'failed', not 'running'"
        )
    if run.status != RunStatus.RUNNING:
        raise LineageError(
            f"pipeline run {run.mlflow_run_id} has already finished as {run.status!r}"
        )
    run.status, run.error, run.finished_at = final, error, utc_now()
    session.flush()
    return run


def record_stage_run(
    session: Session,
    pipeline_run: PipelineRun,
    name: str,
    objective: str,
    position: int,
    mlflow_run_id: str | None,
    datasets: Sequence[DatasetVersion],
    parent_checkpoints: Mapping[str, Checkpoint],
    parent_models: Mapping[str, ModelVersion],
    seconds: float | None,
    final_loss: float | None,
    metrics: Mapping[str, Any],
    status: str = RunStatus.FINISHED,
) -> StageRun:
    """A stage run and its inputs: the dataset versions it read and, per model part, where it started from."""
    both = sorted(set(parent_checkpoints) & set(parent_models))
    if both:
        raise LineageError(
            f"stage {name!r}: parts {both} are given both a parent checkpoint and a parent model"
        )
    stage = _insert(
        session,
        StageRun(
            pipeline_run_id=pipeline_run.id,
            name=name,
            objective=objective,
            position=position,
            mlflow_run_id=mlflow_run_id,
            status=_choice(RunStatus, status, f"stage {name!r} status"),
            seconds=seconds,
            final_loss=final_loss,
            metrics=dict(metrics),
        ),
    )
    # One dataset version given twice (say, for two splits) is still one edge.
    session.add_all(
        StageDataset(stage_run_id=stage.id, dataset_version_id=dataset_id)
        for dataset_id in dict.fromkeys(d.id for d in datasets)
    )
    session.add_all(
        StageParentCheckpoint(
            stage_run_id=stage.id, part=part, checkpoint_id=checkpoint.id
        )
        for part, checkpoint in parent_checkpoints.items()
    )
    session.add_all(
        StageParentModel(stage_run_id=stage.id, part=part, model_version_id=model.id)
        for part, model in parent_models.items()
    )
    session.flush()
    return stage


def record_dataset_producer(session: Session, dataset_version: DatasetVersion, stage_run: StageRun) -> None:
    """Edge: the stage run wrote the dataset version (a data stage)."""
    _insert(session, DatasetProducer(dataset_version_id=dataset_version.id, stage_run_id=stage_run.id))


def record_checkpoint(
    session: Session, stage_run: StageRun, path: str, sha256: str
) -> Checkpoint:
    return _insert(
        session, Checkpoint(stage_run_id=stage_run.id, path=path, sha256=sha256)
    )


def record_evaluation(
    session: Session,
    pipeline_run: PipelineRun,
    checkpoint: Checkpoint,
    dataset_version: DatasetVersion,
    split: str,
    metrics: Mapping[str, Any],
) -> Evaluation:
    evaluation = Evaluation(
        pipeline_run_id=pipeline_run.id,
        checkpoint_id=checkpoint.id,
        dataset_version_id=dataset_version.id,
        split=split,
        metrics=dict(metrics),
    )
    return _insert(session, evaluation)


def record_model_version(
    session: Session,
    name: str,
    version: str,
    checkpoint: Checkpoint,
    pipeline_run: PipelineRun,
    evaluation: Evaluation | None = None,
    mlflow_run_id: str | None = None,
) -> ModelVersion:
    """A newly registered version, as a candidate; registering the same name and version twice is refused."""
    existing = session.scalars(
        select(ModelVersion).filter_by(name=name, version=version)
    ).one_or_none()
    if existing is not None:
        raise LineageError(
            f"model {name!r} version {version!r} is already recorded (status {existing.status!r})"
        )
    model = ModelVersion(
        name=name,
        version=version,
        checkpoint_id=checkpoint.id,
        pipeline_run_id=pipeline_run.id,
        evaluation_id=None if evaluation is None else evaluation.id,
        mlflow_run_id=mlflow_run_id,
        status=ModelStatus.CANDIDATE,
    )
    return _insert(session, model)


def record_alias_event(
    session: Session,
    model_name: str,
    alias: str,
    action: str,
    version: ModelVersion | None,
    previous: ModelVersion | None,
    actor: str,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
) -> AliasEvent:
    """Append an alias event and keep the versions' status in step with it.

    A promotion or rollback of the `production` alias makes `version`
    production and `previous` archived; an archive event archives `version`.
    Requests, approvals and registrations change no status.
    """
    kind = _choice(AliasAction, action, "an alias action")
    for model in (version, previous):
        if model is not None and model.name != model_name:
            raise LineageError(
                f"alias event for model {model_name!r} names version {model.version} of {model.name!r}"
            )
    if (
        kind in (AliasAction.PROMOTE, AliasAction.ROLLBACK)
        and alias == ModelStatus.PRODUCTION
        and version is not None
    ):
        version.status = ModelStatus.PRODUCTION
        if previous is not None and previous.id != version.id:
            previous.status = ModelStatus.ARCHIVED
    elif kind is AliasAction.ARCHIVE and version is not None:
        version.status = ModelStatus.ARCHIVED
    event = AliasEvent(
        model_name=model_name,
        alias=alias,
        action=kind,
        model_version_id=None if version is None else version.id,
        previous_version_id=None if previous is None else previous.id,
        actor=actor,
        reason=reason,
        evidence=dict(evidence or {}),
    )
    return _insert(session, event)


def find_model_version(session: Session, name: str, version: str) -> ModelVersion:
    """The recorded version, or a LineageError that lists the versions (or models) the store does know."""
    found = session.scalars(
        select(ModelVersion).filter_by(name=name, version=version)
    ).one_or_none()
    if found is not None:
        return found
    versions = session.scalars(
        select(ModelVersion.version).where(ModelVersion.name == name)
    ).all()
    if versions:
        known = shorten(sorted(versions, key=_version_order))
        raise LineageError(
            f"model {name!r} has no version {version!r} in the lineage store (versions: {known})"
        )
    raise unknown_model(session, name)


def unknown_model(session: Session, name: str) -> LineageError:
    names = session.scalars(
        select(ModelVersion.name).distinct().order_by(ModelVersion.name)
    ).all()
    return LineageError(
        f"the lineage store has no model {name!r} (models: {shorten(list(names)) or 'none'})"
    )


def shorten(items: list[str], most: int = 20) -> str:
    """Items for an error message: all of them up to `most`, else the first and last few and how many."""
    if len(items) <= most:
        return ", ".join(items)
    half = most // 2
    return f"{', '.join(items[:half])}, ... {len(items) - most} more ..., {', '.join(items[-half:])}"


def _version_order(version: str) -> tuple[bool, int, str]:
    # MLflow numbers versions 1, 2, ... 10: sort them as numbers, anything else after them by text.
    return (not version.isdigit(), int(version) if version.isdigit() else 0, version)


def _choice(allowed: type[Choice], value: str, what: str) -> Choice:
    try:
        return allowed(value)
    except ValueError:
        raise LineageError(
            f"{what} is {value!r}; allowed: {', '.join(m.value for m in allowed)}"
        ) from None


def _insert(session: Session, node: Node) -> Node:
    # Flushed now so that the node has its id for the edges recorded next, and a constraint error surfaces here.
    session.add(node)
    session.flush()
    return node


def _get_or_create(
    session: Session, model: type[Node], key: dict[str, str], **fields: str
) -> Node:
    query = select(model).filter_by(**key)
    found = session.scalars(query).one_or_none()
    if found is not None:
        return found
    node = model(**key, **fields)
    try:
        with session.begin_nested():
            session.add(node)
    except IntegrityError:
        return session.scalars(query).one()
    return node
