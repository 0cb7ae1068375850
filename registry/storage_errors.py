"""An artifact store that failed, said plainly: which store, through which endpoint, after how many tries.

boto3 has already retried each request (settings.s3_max_attempts, with exponential backoff and jitter)
when one of its errors reaches here; what is left is to say so, and that nothing was registered.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from mmops.errors import PipelineError, exception_chain
from mmops.settings import Settings



def storage_error_in(error: BaseException) -> BotoCoreError | ClientError | None:
    """The boto3 error behind `error`, through MLflow's and Prefect's wrapping, if there is one."""
    return next((e for e in exception_chain(error) if isinstance(e, BotoCoreError | ClientError)), None)


def storage_failure(error: BaseException, settings: Settings) -> PipelineError | None:
    """A PipelineError for a run that an S3 failure stopped; None for any other failure."""
    cause = storage_error_in(error)
    if cause is None:
        return None
    endpoint = settings.s3_endpoint_url or "AWS's endpoint for the region"
    return PipelineError(
        f"the artifact store {settings.artifact_location} (S3 at {endpoint}) failed after {settings.s3_max_attempts} attempts "
        f"with backoff: {cause}. Nothing was registered (no model version, no alias changed); the run is marked failed. "
        "Check the store and its credentials (mmops config shows where they come from), then run the recipe again"
    )
