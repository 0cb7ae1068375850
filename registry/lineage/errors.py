"""The one exception type of the lineage store."""

from mmops.errors import MmopsError


class LineageError(MmopsError):
    """A lineage store URL is invalid, a node is unknown, or a value is outside what the schema allows."""
