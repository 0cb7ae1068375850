"""The dashboard opens the lineage store and MLflow read-only: it reads them, cannot write them, and never creates them."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from dashboards.errors import DashboardError, StoreMissing
from dashboards.read_only import LineageReader, tracking_reader
from dashboards.run_compare import metric_curves, metric_names
from registry.lineage import DatasetVersion, LineageStore, dataset_version, sqlite_url


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str, str]:
    """A real MLflow SQLite store (in a folder whose name needs escaping) with two runs' metric histories."""
    path = tmp_path_factory.mktemp("tracking") / "a folder #1" / "mlflow.db"
    path.parent.mkdir()
    uri = f"sqlite:///{path}"
    writer = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = writer.create_run(writer.create_experiment("tiny", artifact_location=(path.parent / "artifacts").as_uri()))
    for step, loss in enumerate([2.0, 1.5, 1.25]):
        writer.log_metric(run.info.run_id, "train/loss", loss, step=step)
    writer.log_metric(run.info.run_id, "accuracy", 0.5)
    later = writer.create_run(run.info.experiment_id)
    writer.log_metric(later.info.run_id, "train/loss", 0.5, step=0)
    return uri, path, run.info.run_id, later.info.run_id


@pytest.fixture
def lineage_db(tmp_path: Path) -> Path:
    path = tmp_path / "a folder #1" / "lineage.db"
    store = LineageStore(sqlite_url(path))
    store.upgrade()
    with store.session() as session:
        dataset_version(session, "tiny-shapes", "0" * 32 + ".dir", "f" * 40, "/w/data")
    store.dispose()
    return path


def test_mlflow_is_read_through_the_reader_and_writes_are_refused(mlflow_run, tmp_path: Path, monkeypatch):
    uri, path, run_id, later_run_id = mlflow_run
    before = sha256(path)
    monkeypatch.chdir(tmp_path)
    reader = tracking_reader(uri)
    assert metric_names(reader, [run_id]) == ["train/loss", "accuracy"]
    curve = metric_curves(reader, {"3": {"lm": run_id}, "4": {"align": later_run_id, "lm": run_id}}, "train/loss")
    assert [(p.version, p.stage, p.step, p.value) for p in curve] == [
        ("v3", "lm", 0, 2.0), ("v3", "lm", 1, 1.5), ("v3", "lm", 2, 1.25),
        ("v4", "lm", 0, 2.0), ("v4", "lm", 1, 1.5), ("v4", "lm", 2, 1.25),
        ("v4", "align", 0, 0.5),
    ], "stage by stage in the order they first appear (training order), then by version and step"
    with pytest.raises(MlflowException, match="readonly"):
        reader.set_tag(run_id, "written", "by the dashboard")
    assert sha256(path) == before
    assert list(tmp_path.iterdir()) == [], "nothing is created in the working directory either"


def test_a_missing_mlflow_database_or_folder_is_reported_and_not_created(tmp_path: Path):
    with pytest.raises(StoreMissing, match="no pipeline has run in this workdir yet"):
        tracking_reader(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(StoreMissing, match="no MLflow tracking folder"):
        tracking_reader(str(tmp_path / "mlruns"))
    assert list(tmp_path.iterdir()) == []


def test_the_lineage_store_is_read_and_writes_are_refused(lineage_db: Path):
    before = sha256(lineage_db)
    reader = LineageReader(sqlite_url(lineage_db))
    try:
        with reader.session() as session:
            assert [d.name for d in session.scalars(select(DatasetVersion))] == ["tiny-shapes"]
        with pytest.raises(OperationalError, match="readonly"), reader.session() as session:
            session.add(DatasetVersion(name="written", md5="1" * 32, git_rev="g", path="/p"))
            session.flush()
    finally:
        reader.dispose()
    assert sha256(lineage_db) == before


def test_a_missing_lineage_store_is_reported_and_not_created(tmp_path: Path):
    with pytest.raises(StoreMissing, match=f"no lineage store at {tmp_path / 'lineage.db'}"):
        LineageReader(sqlite_url(tmp_path / "lineage.db"))
    assert not (tmp_path / "lineage.db").exists()


def test_a_database_without_lineage_tables_counts_as_no_runs_yet(tmp_path: Path):
    sqlite3.connect(tmp_path / "lineage.db").close()
    with pytest.raises(StoreMissing, match="holds no lineage tables yet"):
        LineageReader(sqlite_url(tmp_path / "lineage.db"))


def test_a_store_at_another_schema_revision_is_refused_saying_how_to_migrate(lineage_db: Path):
    with sqlite3.connect(lineage_db) as connection:
        connection.execute("UPDATE lineage_alembic_version SET version_num = '0000_older'")
    with pytest.raises(DashboardError, match=r"schema revision 0000_older; this dashboard reads revision .*mmops run"):
        LineageReader(sqlite_url(lineage_db))


def test_an_unsupported_lineage_url_names_what_is_allowed_and_hides_the_password():
    with pytest.raises(DashboardError) as error:
        LineageReader("mysql://reader:s3cret@db.example/lineage")
    assert "allowed: sqlite:///PATH or postgresql" in str(error.value)
    assert "s3cret" not in str(error.value) and "***" in str(error.value)
