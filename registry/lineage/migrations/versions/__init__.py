"""The lineage store's Alembic revisions; a package so that they are installed with mmops."""
