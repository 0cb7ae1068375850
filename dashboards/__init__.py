"""The Streamlit dashboard: read-only pages over the lineage store and MLflow.

`mmops dashboard` starts `app.py`, a multipage app whose pages live in
`views/` and only lay out widgets. What they show is computed by the plain
modules here, which take a session or an MLflow client and return plain data
(tables, DOT text, diffs), so they are tested without Streamlit. Both stores
are opened read-only (read_only.py) for everything the pages show. The only
writes are the Promote page's changes by a signed-in user, which go through
registry.promotion on stores opened for that change alone (promotion_actions.py).
"""
