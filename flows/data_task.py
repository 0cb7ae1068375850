"""Version the recipe's dataset with DVC (build or reuse, commit, push)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from mmops.recipe import DataConfig
from mmops.settings import Settings
from registry.data_repo import DatasetVersion, version_dataset


def dataset_params(data: DataConfig) -> dict:
    """What params.yaml holds for a dataset: everything its DVC stage depends on."""
    return {"shapes": data.shapes.model_dump(mode="json"), "tokenizer": data.tokenizer.model_dump(mode="json")}


@task(name="version-data", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def version_data(settings: Settings, data: DataConfig) -> DatasetVersion:
    logger = get_run_logger()
    logger.info("versioning dataset %s in %s (DVC remote %s)", data.name, settings.datasets_repo, settings.dvc_remote)
    version = version_dataset(settings.datasets_repo, settings.dvc_remote, data.name, dataset_params(data))
    logger.info("dataset %s: md5 %s, git %s", data.name, version.md5, version.git_rev[:10])
    return version
