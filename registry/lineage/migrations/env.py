"""Alembic environment of the lineage store.

LineageStore.upgrade() hands in a connection (config.attributes["connection"])
whose transaction already holds the migration lock; the migrations run inside
that transaction and the store commits it. Run by hand with `sqlalchemy.url`
set in an alembic.ini, the environment opens the same kind of locked
connection from the URL itself, or prints the DDL with `--sql`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from registry.lineage.errors import LineageError
from registry.lineage.migrations import VERSION_TABLE
from registry.lineage.schema import Base
from registry.lineage.store import LineageStore


def run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_online(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise LineageError(
            "lineage migrations need a connection or a sqlalchemy.url option in the Alembic config"
        )
    if context.is_offline_mode():
        run_offline(url)
        return
    store = LineageStore(url)
    try:
        with store.migration_lock() as locked:
            run_online(locked)
    finally:
        store.dispose()


main()
