"""Datasets written by stages: the edge from a data stage (CapFilt) to the dataset version it wrote.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "dataset_producers"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("stage_run_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_version_id", "stage_run_id", name=f"pk_{TABLE}"),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"], ["dataset_versions.id"], name=f"fk_{TABLE}_dataset_version_id_dataset_versions"
        ),
        sa.ForeignKeyConstraint(["stage_run_id"], ["stage_runs.id"], name=f"fk_{TABLE}_stage_run_id_stage_runs"),
    )
    op.create_index(f"ix_{TABLE}_stage_run_id", TABLE, ["stage_run_id"])


def downgrade() -> None:
    op.drop_table(TABLE)
