"""The store: URL checks, SQLite setup, transactions that commit or leave nothing, UTC timestamps."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from registry.lineage import (
    LineageError,
    LineageStore,
    ModelVersion,
    PipelineRun,
    StageRun,
    find_model_version,
    record_model_version,
    sqlite_url,
)
from registry.lineage.schema import Checkpoint


@pytest.mark.parametrize(
    ("url", "expected", "secret"),
    [
        ("not a url", "is not a database URL", None),
        ("mysql://root:hunter2@localhost/lineage", "uses 'mysql'", "hunter2"),
        (
            "postgresql+nosuchdriver://me:hunter2@db/lineage",
            "driver is not installed",
            "hunter2",
        ),
    ],
)
def test_an_invalid_url_is_named_with_what_is_allowed(
    url: str, expected: str, secret: str | None
):
    with pytest.raises(LineageError) as raised:
        LineageStore(url)
    message = str(raised.value)
    assert (
        expected in message
        and "allowed" in message
        and "postgresql+DRIVER://" in message
    )
    if secret is not None:
        assert secret not in message and "***" in message


def test_an_unreachable_server_is_a_lineage_error_without_the_password():
    pytest.importorskip("psycopg")
    store = LineageStore("postgresql+psycopg://me:hunter2@127.0.0.1:1/lineage")
    with pytest.raises(LineageError, match="cannot migrate") as raised:
        store.upgrade()
    assert "hunter2" not in str(raised.value) and "127.0.0.1:1" in str(raised.value)


def test_sqlite_url_is_absolute_and_the_store_makes_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    url = sqlite_url(Path("nested") / "deeper" / "lineage.db")
    assert url == f"sqlite:///{tmp_path}/nested/deeper/lineage.db"
    store = LineageStore(url)
    store.upgrade()
    assert (tmp_path / "nested" / "deeper" / "lineage.db").is_file()
    store.dispose()


def test_foreign_keys_are_enforced(store: LineageStore):
    """SQLite ignores foreign keys unless each connection turns them on."""
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(
            StageRun(
                pipeline_run_id=999,
                name="s",
                objective="o",
                position=0,
                status="finished",
            )
        )


def test_a_failed_transaction_leaves_no_model_version(store: LineageStore, builder):
    builder.llava("1")
    with store.session() as session:
        model = find_model_version(session, "shapes-llava", "1")
        checkpoint = session.get_one(Checkpoint, model.checkpoint_id)
        run = session.get_one(PipelineRun, model.pipeline_run_id)

    with (
        pytest.raises(RuntimeError, match="registration failed"),
        store.session() as session,
    ):
        record_model_version(session, "shapes-llava", "2", checkpoint, run)
        assert find_model_version(session, "shapes-llava", "2").id is not None
        raise RuntimeError("registration failed after the lineage was written")

    with store.session() as session:
        assert session.scalars(select(ModelVersion.version)).all() == ["1"]
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 1


def test_timestamps_come_back_in_utc(store: LineageStore, builder):
    builder.llava("1")
    with store.session() as session:
        model = find_model_version(session, "shapes-llava", "1")
        run = session.get_one(PipelineRun, model.pipeline_run_id)
    assert (
        model.created_at.tzinfo is not None
        and model.created_at.utcoffset() == UTC.utcoffset(None)
    )
    assert run.finished_at is not None and run.finished_at >= run.started_at
