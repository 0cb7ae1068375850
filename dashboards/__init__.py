"""The Streamlit dashboard: read-only pages over the lineage store and MLflow.

`mmops dashboard` starts `app.py`, a multipage app whose pages live in
`views/` and only lay out widgets. What they show is computed by the plain
modules here, which take a session or an MLflow client and return plain data
(tables, DOT text, diffs), so they are tested without Streamlit. Both stores
are opened read-only (read_only.py): the dashboard never writes to them.
"""
