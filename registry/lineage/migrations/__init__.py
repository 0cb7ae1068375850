"""Alembic migrations of the lineage store, run programmatically (see LineageStore.upgrade).

The version table has its own name so that the lineage tables can share a
database with another Alembic-managed schema, MLflow's included, which uses
the default `alembic_version`.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection

VERSION_TABLE = "lineage_alembic_version"
SCRIPT_LOCATION = Path(__file__).parent


def alembic_config(connection: Connection) -> Config:
    """An Alembic config that migrates through `connection`, inside the transaction the caller opened."""
    config = Config()
    # Config options go through configparser interpolation, where '%' is special.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config
