"""The dashboard's exception types: what a page shows as a friendly message instead of a traceback."""

from mmops.errors import MmopsError


class DashboardError(MmopsError):
    """A store cannot be read, or a file the dashboard was asked to show is not allowed or not readable."""


class StoreMissing(DashboardError):
    """A store the dashboard reads does not exist yet (no run has written it); the dashboard never creates one."""
