"""The lineage graph: nodes, edges and alias events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Every table is written out rather than made from the models, so this revision
stays what the schema was when it was written; tests check that the models
still match the migrated database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}"
    )


def _index(table: str, column: str) -> None:
    op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "dataset_versions",
        _id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("md5", sa.String(64), nullable=False),
        sa.Column("git_rev", sa.String(100), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.UniqueConstraint(
            "name", "md5", "git_rev", name="uq_dataset_versions_name_md5_git_rev"
        ),
    )
    _index("dataset_versions", "md5")

    op.create_table(
        "recipes",
        _id(),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("family", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recipes"),
        sa.UniqueConstraint("sha256", name="uq_recipes_sha256"),
    )

    op.create_table(
        "code_versions",
        _id(),
        sa.Column("git_rev", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_code_versions"),
        sa.UniqueConstraint("git_rev", name="uq_code_versions_git_rev"),
    )

    op.create_table(
        "pipeline_runs",
        _id(),
        sa.Column("mlflow_run_id", sa.String(64), nullable=False),
        sa.Column("prefect_flow_run_id", sa.String(64), nullable=True),
        sa.Column("recipe_id", sa.Integer(), nullable=False),
        sa.Column("code_version_id", sa.Integer(), nullable=False),
        sa.Column("workdir", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
        sa.UniqueConstraint("mlflow_run_id", name="uq_pipeline_runs_mlflow_run_id"),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')",
            name="ck_pipeline_runs_status",
        ),
        _fk("pipeline_runs", "recipe_id", "recipes"),
        _fk("pipeline_runs", "code_version_id", "code_versions"),
    )
    _index("pipeline_runs", "recipe_id")
    _index("pipeline_runs", "code_version_id")

    op.create_table(
        "stage_runs",
        _id(),
        sa.Column("pipeline_run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("objective", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("final_loss", sa.Double(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stage_runs"),
        sa.UniqueConstraint(
            "pipeline_run_id", "name", name="uq_stage_runs_pipeline_run_id_name"
        ),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name="ck_stage_runs_status"
        ),
        _fk("stage_runs", "pipeline_run_id", "pipeline_runs"),
    )

    op.create_table(
        "stage_datasets",
        sa.Column("stage_run_id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "stage_run_id", "dataset_version_id", name="pk_stage_datasets"
        ),
        _fk("stage_datasets", "stage_run_id", "stage_runs"),
        _fk("stage_datasets", "dataset_version_id", "dataset_versions"),
    )
    _index("stage_datasets", "dataset_version_id")

    op.create_table(
        "checkpoints",
        _id(),
        sa.Column("stage_run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
        _fk("checkpoints", "stage_run_id", "stage_runs"),
    )
    _index("checkpoints", "stage_run_id")

    op.create_table(
        "stage_parent_checkpoints",
        sa.Column("stage_run_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(100), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "stage_run_id", "part", name="pk_stage_parent_checkpoints"
        ),
        _fk("stage_parent_checkpoints", "stage_run_id", "stage_runs"),
        _fk("stage_parent_checkpoints", "checkpoint_id", "checkpoints"),
    )
    _index("stage_parent_checkpoints", "checkpoint_id")

    op.create_table(
        "evaluations",
        _id(),
        sa.Column("pipeline_run_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(64), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
        _fk("evaluations", "pipeline_run_id", "pipeline_runs"),
        _fk("evaluations", "checkpoint_id", "checkpoints"),
        _fk("evaluations", "dataset_version_id", "dataset_versions"),
    )
    _index("evaluations", "pipeline_run_id")
    _index("evaluations", "checkpoint_id")
    _index("evaluations", "dataset_version_id")

    op.create_table(
        "model_versions",
        _id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_run_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        _timestamp("created_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        sa.CheckConstraint(
            "status IN ('candidate', 'production', 'archived')",
            name="ck_model_versions_status",
        ),
        _fk("model_versions", "checkpoint_id", "checkpoints"),
        _fk("model_versions", "pipeline_run_id", "pipeline_runs"),
        _fk("model_versions", "evaluation_id", "evaluations"),
    )
    _index("model_versions", "checkpoint_id")
    _index("model_versions", "pipeline_run_id")
    _index("model_versions", "evaluation_id")

    op.create_table(
        "stage_parent_models",
        sa.Column("stage_run_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(100), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("stage_run_id", "part", name="pk_stage_parent_models"),
        _fk("stage_parent_models", "stage_run_id", "stage_runs"),
        _fk("stage_parent_models", "model_version_id", "model_versions"),
    )
    _index("stage_parent_models", "model_version_id")

    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _timestamp("at"),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
        sa.CheckConstraint(
            "action IN ('promote', 'rollback', 'archive', 'request', 'approve', 'register')",
            name="ck_alias_events_action",
        ),
        _fk("alias_events", "model_version_id", "model_versions"),
        _fk("alias_events", "previous_version_id", "model_versions"),
    )
    _index("alias_events", "model_name")
    _index("alias_events", "model_version_id")
    _index("alias_events", "previous_version_id")


def downgrade() -> None:
    # Children before parents, so that no foreign key is left pointing at a dropped table.
    for table in (
        "alias_events",
        "stage_parent_models",
        "model_versions",
        "evaluations",
        "stage_parent_checkpoints",
        "checkpoints",
        "stage_datasets",
        "stage_runs",
        "pipeline_runs",
        "code_versions",
        "recipes",
        "dataset_versions",
    ):
        op.drop_table(table)
