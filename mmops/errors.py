"""Our exception types: every message says what was wrong, where, and what is allowed.

The CLI prints these without a traceback and exits non-zero.
"""

from collections.abc import Iterator

CHAIN_DEPTH = 20


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and what caused it, through the libraries' wrapping (MLflow's, Prefect's), outermost first; a
    `raise ... from None` ends the chain there: that error has explained its context already."""
    seen: BaseException | None = error
    for _ in range(CHAIN_DEPTH):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


class MmopsError(Exception):
    """Base class for errors meant for people, not for debuggers."""


class RecipeError(MmopsError):
    """A recipe file is missing, unparsable or invalid."""


class RegistryError(MmopsError):
    """A model, version or alias is missing, or a registry operation was refused."""


class PipelineError(MmopsError):
    """A pipeline step failed; the message names the step."""
