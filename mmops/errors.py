"""Our exception types: every message says what was wrong, where, and what is allowed.

The CLI prints these without a traceback and exits non-zero.
"""


class MmopsError(Exception):
    """Base class for errors meant for people, not for debuggers."""


class RecipeError(MmopsError):
    """A recipe file is missing, unparsable or invalid."""


class RegistryError(MmopsError):
    """A model, version or alias is missing, or a registry operation was refused."""


class PipelineError(MmopsError):
    """A pipeline step failed; the message names the step."""
