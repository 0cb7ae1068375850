"""The Alembic migrations: every table, idempotent, safe to run from several processes, and in step with the models."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from registry.lineage import LineageStore, code_version
from registry.lineage.migrations import SCRIPT_LOCATION, VERSION_TABLE, alembic_config
from registry.lineage.schema import Base, CodeVersion

LINEAGE_TABLES = {
    "dataset_versions",
    "recipes",
    "code_versions",
    "pipeline_runs",
    "stage_runs",
    "stage_datasets",
    "stage_parent_checkpoints",
    "stage_parent_models",
    "checkpoints",
    "evaluations",
    "model_versions",
    "alias_events",
    "dataset_producers",
}
HEAD = "0002"
REPO = Path(__file__).resolve().parents[3]


def schema_version(store: LineageStore) -> list[str]:
    with store.engine.connect() as connection:
        return list(
            connection.execute(
                text(f"SELECT version_num FROM {VERSION_TABLE}")
            ).scalars()
        )


def test_upgrade_creates_every_table(lineage_url: str):
    store = LineageStore(lineage_url)
    assert set(inspect(store.engine).get_table_names()) == set()
    store.upgrade()
    assert set(inspect(store.engine).get_table_names()) == LINEAGE_TABLES | {
        VERSION_TABLE
    }
    assert set(Base.metadata.tables) == LINEAGE_TABLES
    assert schema_version(store) == [HEAD]
    store.dispose()


def test_upgrade_is_idempotent_and_keeps_the_data(store: LineageStore):
    with store.session() as session:
        code_version(session, "abc123")
    store.upgrade()
    store.upgrade()
    assert schema_version(store) == [HEAD]
    with store.session() as session:
        assert session.scalars(select(CodeVersion.git_rev)).all() == ["abc123"]


def test_a_store_made_before_data_stages_upgrades_in_place(lineage_url: str):
    """A workdir from before 0002 (no dataset_producers) keeps its rows and gains the table."""
    store = LineageStore(lineage_url)
    with store.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
    with store.session() as session:
        code_version(session, "before-0002")
    assert "dataset_producers" not in inspect(store.engine).get_table_names()
    store.upgrade()
    assert schema_version(store) == [HEAD]
    assert "dataset_producers" in inspect(store.engine).get_table_names()
    with store.session() as session:
        assert session.scalars(select(CodeVersion.git_rev)).all() == ["before-0002"]
    store.dispose()


def test_the_models_match_the_migrated_database(store: LineageStore):
    """The migration is written by hand: any column, index or constraint it lacks or adds shows up here."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    store: LineageStore,
):
    with store.migration_lock() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(store.engine).get_table_names()) == {VERSION_TABLE}
    store.upgrade()
    assert set(inspect(store.engine).get_table_names()) == LINEAGE_TABLES | {
        VERSION_TABLE
    }


def test_alembic_run_by_hand_migrates_the_url_in_its_config(
    lineage_url: str, capsys: pytest.CaptureFixture[str]
):
    """What `alembic upgrade head` does with an alembic.ini naming the lineage database, and with --sql."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", lineage_url)
    command.upgrade(config, "head", sql=True)
    assert "CREATE TABLE stage_parent_models" in capsys.readouterr().out
    store = LineageStore(lineage_url)
    assert inspect(store.engine).get_table_names() == [], (
        "--sql must only print the DDL"
    )

    command.upgrade(config, "head")
    assert set(inspect(store.engine).get_table_names()) == LINEAGE_TABLES | {
        VERSION_TABLE
    }
    store.dispose()


def test_processes_upgrading_at_once_all_succeed(lineage_url: str):
    """Each process checks the version and creates tables; the migration lock keeps them from doing it together."""
    # Every process imports first, then sleeps until the same moment, so that their upgrades really overlap.
    script = (
        "import sys, time; from registry.lineage import LineageStore; store = LineageStore(sys.argv[1]); "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); store.upgrade()"
    )
    start = str(time.time() + 4)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, lineage_url, start],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], "\n".join(
        errors
    )
    store = LineageStore(lineage_url)
    assert schema_version(store) == [HEAD]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(CodeVersion)) == 0
    store.dispose()
