"""The lineage store: an engine on SQLite or PostgreSQL, its migrations, and short transactions.

SQLite transactions start with BEGIN IMMEDIATE, which takes the write lock at
once: two processes that both read before writing would otherwise deadlock on
upgrading their read locks, and SQLite answers that with an immediate
'database is locked' instead of waiting. With the lock taken up front, the
second process waits (up to the busy timeout) for the first to commit. Keep
sessions short: a session held open blocks every other writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    create_engine,
    event,
    func,
    make_url,
    select,
)
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mmops.redaction import redact
from registry.lineage.errors import LineageError
from registry.lineage.migrations import alembic_config

ALLOWED = "sqlite:///PATH or postgresql+DRIVER://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed 64-bit number ('mmopslin' in ASCII): every process migrating one database must ask for the same.
POSTGRES_MIGRATION_LOCK = 0x6D6D6F70736C696E


def sqlite_url(path: Path | str) -> str:
    """The URL of a SQLite file, made absolute so that it does not depend on the working directory."""
    return URL.create(
        "sqlite", database=str(Path(path).expanduser().resolve())
    ).render_as_string()


class LineageStore:
    """The lineage database behind one URL; call upgrade() once before the first session."""

    def __init__(self, url: str) -> None:
        self.url = _parse(url)
        self.engine = _engine(self.url)
        # Objects stay readable after their session commits: callers record, then pass the rows on.
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"LineageStore({self.shown_url!r})"

    @property
    def shown_url(self) -> str:
        """The URL as it may be shown to people, password hidden."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def locked_session(self, key: str) -> Iterator[Session]:
        """A session whose transaction holds the lock named `key` until it ends.

        PostgreSQL: a transaction-scoped advisory lock on a hash of the key, so
        sessions for other keys run in parallel. SQLite: the write lock every
        transaction here begins with. Read-then-write sequences in the block
        see no concurrent change to what the key guards.
        """
        with self.session() as session:
            session.connection()  # begin now (SQLite: BEGIN IMMEDIATE), not at the first query
            if self.engine.dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(lock_id(key))))
            yield session

    @contextmanager
    def migration_lock(self) -> Iterator[Connection]:
        """A connection whose transaction holds the migration lock; committed when the block ends.

        PostgreSQL: a transaction-scoped advisory lock. SQLite: the write lock
        that every transaction here begins with. Either way a second process
        waits, then finds the schema already at head.
        """
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    select(func.pg_advisory_xact_lock(POSTGRES_MIGRATION_LOCK))
                )
            yield connection

    def upgrade(self) -> None:
        """Bring the schema to the newest migration; a no-op when it is there already."""
        try:
            with self.migration_lock() as connection:
                command.upgrade(alembic_config(connection), "head")
        except OperationalError as error:
            raise LineageError(
                f"lineage store {self.shown_url}: cannot migrate: {error.orig}"
            ) from error

    def dispose(self) -> None:
        """Close every pooled connection (SQLite files stay locked on some systems while one is open)."""
        self.engine.dispose()


@contextmanager
def open_store(url: str) -> Iterator[LineageStore]:
    """The store behind `url`, migrated to the newest schema; its connections are closed on exit."""
    store = LineageStore(url)
    try:
        store.upgrade()
        yield store
    finally:
        store.dispose()


def lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock number for a key; the migration lock's number is kept out of reach."""
    number = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big", signed=True)
    return number if number != POSTGRES_MIGRATION_LOCK else number - 1


def _parse(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise LineageError(
            f"lineage store URL {redact(raw)!r} is not a database URL; allowed: {ALLOWED}"
        ) from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise LineageError(
            f"lineage store URL {redact(raw)!r} uses {backend!r}; allowed: sqlite or postgresql ({ALLOWED})"
        )
    return url


def _engine(url: URL) -> Engine:
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        # SQLite creates the file but not its folder.
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        shown = url.render_as_string(hide_password=True)
        raise LineageError(
            f"lineage store URL {shown!r}: its database driver is not installed ({error}); allowed: {ALLOWED}"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts transactions late and breaks SAVEPOINT; turn it off
    # and let _begin_immediate start every transaction instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
