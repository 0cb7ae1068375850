"""The lineage graph as tables: nodes (datasets, recipes, runs, checkpoints, model versions) and the edges between them.

One set of models for SQLite and PostgreSQL: JSON columns use the portable
sqlalchemy.JSON, timestamps are timezone-aware UTC on both, and the allowed
statuses are CHECK constraints rather than native enums (which SQLite lacks).
Constraint names come from one naming convention so that the hand-written
migration in migrations/versions and these models name them identically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class AliasAction(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"
    REQUEST = "request"
    APPROVE = "approve"
    REGISTER = "register"


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the zone (timestamptz); SQLite has no zone type and hands
    back naive values, so values are stored as UTC and given their zone back on
    load. A naive value is refused: its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"lineage timestamps must be timezone-aware, got naive {value.isoformat()}"
            )
        return value.astimezone(UTC)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        return (
            value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        )


def one_of(column: str, allowed: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in allowed)
    return CheckConstraint(f"{column} IN ({values})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        str: String(255),
    }


class DatasetVersion(Base):
    """A DVC-tracked dataset as it was at one git revision; md5 is DVC's (a directory's ends in '.dir')."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("name", "md5", "git_rev"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    md5: Mapped[str] = mapped_column(String(64), index=True)
    git_rev: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Recipe(Base):
    """A recipe file, addressed by the sha256 of its text."""

    __tablename__ = "recipes"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str]
    family: Mapped[str]
    text: Mapped[str] = mapped_column(Text)


class CodeVersion(Base):
    __tablename__ = "code_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    git_rev: Mapped[str] = mapped_column(String(100), unique=True)


class PipelineRun(Base):
    """One run of the pipeline flow: a recipe trained by one code version, mirrored by an MLflow parent run."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (one_of("status", RunStatus),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mlflow_run_id: Mapped[str] = mapped_column(String(64), unique=True)
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipes.id"), index=True)
    code_version_id: Mapped[int] = mapped_column(
        ForeignKey("code_versions.id"), index=True
    )
    workdir: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class StageRun(Base):
    """One stage of a pipeline run; position is its order in the recipe."""

    __tablename__ = "stage_runs"
    # The unique constraint's index leads with pipeline_run_id, so it also serves lookups by run.
    __table_args__ = (
        UniqueConstraint("pipeline_run_id", "name"),
        one_of("status", RunStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id"))
    name: Mapped[str]
    objective: Mapped[str]
    position: Mapped[int]
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    seconds: Mapped[float | None]
    final_loss: Mapped[float | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StageDataset(Base):
    """Edge: a stage run consumed a dataset version."""

    __tablename__ = "stage_datasets"

    stage_run_id: Mapped[int] = mapped_column(
        ForeignKey("stage_runs.id"), primary_key=True
    )
    dataset_version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id"), primary_key=True, index=True
    )


class DatasetProducer(Base):
    """Edge: a stage run wrote a dataset version (a data stage, such as CapFilt's bootstrapped captions).

    A later stage that reads the version is thereby a descendant of the stage
    that wrote it, and of everything that stage read and started from."""

    __tablename__ = "dataset_producers"

    dataset_version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id"), primary_key=True
    )
    stage_run_id: Mapped[int] = mapped_column(
        ForeignKey("stage_runs.id"), primary_key=True, index=True
    )


class Checkpoint(Base):
    """Weights a stage run produced."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    stage_run_id: Mapped[int] = mapped_column(ForeignKey("stage_runs.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class StageParentCheckpoint(Base):
    """Edge: a stage run started (part of) its model from a checkpoint; part names the module, '*' the whole model."""

    __tablename__ = "stage_parent_checkpoints"

    stage_run_id: Mapped[int] = mapped_column(
        ForeignKey("stage_runs.id"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(100), primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"), index=True)


class Evaluation(Base):
    """Metrics of a checkpoint on one split of a dataset version."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_run_id: Mapped[int] = mapped_column(
        ForeignKey("pipeline_runs.id"), index=True
    )
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"), index=True)
    dataset_version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id"), index=True
    )
    split: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ModelVersion(Base):
    """A registered model version (version is MLflow's number, as a string) and the checkpoint it was made from."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        one_of("status", ModelStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    version: Mapped[str] = mapped_column(String(32))
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"), index=True)
    pipeline_run_id: Mapped[int] = mapped_column(
        ForeignKey("pipeline_runs.id"), index=True
    )
    evaluation_id: Mapped[int | None] = mapped_column(
        ForeignKey("evaluations.id"), index=True
    )
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    status: Mapped[str] = mapped_column(String(16), default=ModelStatus.CANDIDATE)


class StageParentModel(Base):
    """Edge: a stage run started (part of) its model from a registered model version (LLaVA's CLIP vision tower)."""

    __tablename__ = "stage_parent_models"

    stage_run_id: Mapped[int] = mapped_column(
        ForeignKey("stage_runs.id"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), index=True
    )


class AliasEvent(Base):
    """An append-only record of an alias moving (or being asked to move); id gives the order."""

    __tablename__ = "alias_events"
    __table_args__ = (one_of("action", AliasAction),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(index=True)
    alias: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), index=True
    )
    previous_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), index=True
    )
    actor: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utc_now)
