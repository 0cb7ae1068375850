"""The dashboard's pages: scripts that Streamlit runs, one per page, listed in dashboards/app.py.

Not named pages/: Streamlit would take a pages/ folder beside app.py for its older
multipage mode and run a page without app.py (no sidebar, no page list).
"""
