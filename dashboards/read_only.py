"""Opening the lineage store and MLflow read-only: the dashboard looks, and never writes.

SQLite files are opened in SQLite's own read-only mode (a `file:` URI with
mode=ro), so any write fails inside SQLite and a missing file is never
created; the file is checked for first so that its absence can be explained
rather than reported as an error. Lineage sessions on PostgreSQL are READ
ONLY transactions. Any other MLflow backend (a tracking server) is only asked
read questions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlparse

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import Session

from dashboards.errors import DashboardError, StoreMissing
from registry.lineage.migrations import SCRIPT_LOCATION, VERSION_TABLE
from mmops.redaction import redact

LINEAGE_ALLOWED = "sqlite:///PATH or postgresql+DRIVER://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
NO_RUNS_YET = "no pipeline has run in this workdir yet"


def read_only_sqlite_url(path: Path) -> URL:
    """A URL that opens an existing SQLite file read-only (and never creates one).

    The driver is named (sqlite+pysqlite): MLflow creates the parent folder of
    whatever follows a plain 'sqlite:///', which for a 'file:' URI is a folder
    named 'file:' in the working directory.
    """
    return URL.create("sqlite+pysqlite", database=f"file:{quote(str(path))}", query={"mode": "ro", "uri": "true"})


def _sqlite_file(url: URL, what: str) -> Path:
    database = url.database
    if not database or database == ":memory:":
        raise DashboardError(f"{what} URL {redact(url.render_as_string())!r} names no file; a dashboard needs sqlite:///PATH")
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise StoreMissing(f"no {what} at {path}: {NO_RUNS_YET}")
    return path


class LineageReader:
    """Read-only sessions on the lineage store behind a URL; refuses a store that is missing or not at the newest schema."""

    def __init__(self, url: str) -> None:
        self.shown_url = redact(url)
        self.engine = _lineage_engine(url, self.shown_url)
        try:
            self._check_schema()
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction is rolled back when the block ends (nothing is ever committed)."""
        with Session(self.engine) as session:
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()

    def _check_schema(self) -> None:
        expected = set(ScriptDirectory(str(SCRIPT_LOCATION)).get_heads())
        try:
            with self.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
                found = set(context.get_current_heads())
        except (OperationalError, ProgrammingError) as error:
            raise DashboardError(f"cannot read the lineage store {self.shown_url}: {error.orig}") from None
        if not found:
            raise StoreMissing(f"the lineage store {self.shown_url} holds no lineage tables yet: {NO_RUNS_YET}")
        if found != expected:
            raise DashboardError(
                f"the lineage store {self.shown_url} is at schema revision {', '.join(sorted(found))}; this dashboard reads "
                f"revision {', '.join(sorted(expected))}: run any mmops command that writes lineage (mmops run) to migrate it"
            )


def _lineage_engine(url: str, shown: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DashboardError(f"lineage store URL {shown!r} is not a database URL; allowed: {LINEAGE_ALLOWED}") from None
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return create_engine(read_only_sqlite_url(_sqlite_file(parsed, "lineage store")))
        if backend == "postgresql":
            return create_engine(parsed, execution_options={"postgresql_readonly": True})
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise DashboardError(f"lineage store URL {shown!r}: its database driver is not installed ({error})") from None
    raise DashboardError(f"lineage store URL {shown!r} uses {backend!r}; allowed: {LINEAGE_ALLOWED}")


def read_only_tracking_uri(uri: str) -> str:
    """The MLflow tracking URI to read through: SQLite files read-only, local folders only when they exist."""
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        path = _sqlite_file(make_url(uri), "MLflow tracking database")
        return read_only_sqlite_url(path).render_as_string(hide_password=False)
    if scheme in ("", "file"):
        # MLflow's file store would create the folder and a default experiment.
        path = Path(urlparse(uri).path if scheme else uri).expanduser()
        if not path.is_dir():
            raise StoreMissing(f"no MLflow tracking folder at {path}: {NO_RUNS_YET}")
    return uri


def tracking_reader(uri: str) -> MlflowClient:
    """An MLflow client that reads the tracking store and registry behind `uri`."""
    read_uri = read_only_tracking_uri(uri)
    try:
        client = MlflowClient(tracking_uri=read_uri, registry_uri=read_uri)
        client.search_registered_models(max_results=1)
    except MlflowException as error:
        raise DashboardError(f"cannot read MLflow at {redact(uri)}: {error.message}") from None
    except OperationalError as error:  # MLflow's schema set-up tried to write to a read-only database
        raise DashboardError(f"cannot read MLflow at {redact(uri)}: {error.orig}") from None
    return client
