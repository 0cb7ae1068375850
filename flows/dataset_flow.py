"""Refreshing a recipe's dataset without training: version it now, and announce a new version.

A dataset imported from a source (data.source) changes when its source does; a refresh (by hand,
`mmops data version RECIPE`, or on a cron schedule, `mmops schedule RECIPE --cron ... --data-only`)
imports the changes as a new DVC version and emits the Prefect event `mmops.dataset.versioned` for
the resource `mmops.dataset.<name>`. A recipe scheduled with `--on-new-data` has a deployment trigger
on that event: a new dataset version starts its pipeline. The pipeline's own versioning emits
nothing, so a run that trains on a new version does not start another.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

from flows.data_task import version_data
from mmops.recipe import load_recipe
from mmops.settings import Settings, export_library_environment
from registry.data_repo import DatasetVersion, current_md5

DATASET_VERSIONED = "mmops.dataset.versioned"


def dataset_resource(name: str) -> str:
    """The Prefect resource id of a dataset, which events name and triggers match."""
    return f"mmops.dataset.{name}"


def announce(version: DatasetVersion, previous: str | None) -> None:
    emit_event(
        DATASET_VERSIONED,
        resource={"prefect.resource.id": dataset_resource(version.name), "prefect.resource.name": version.name},
        payload={"md5": version.md5, "git_rev": version.git_rev, "previous_md5": previous, "remote": version.remote},
    )
    EventsWorker.drain_all()  # a short process must not exit before its event has left


@flow(name="mmops-dataset", log_prints=True)
def refresh_dataset(recipe_path: str, workdir: str) -> dict:
    """Version the recipe's dataset; emit mmops.dataset.versioned when the version is not the one there was."""
    logger = get_run_logger()
    recipe = load_recipe(recipe_path).recipe
    settings = Settings.for_workdir(workdir)
    export_library_environment(settings)
    previous = current_md5(settings.datasets_repo, recipe.data.name)
    version = version_data(settings, recipe.data)
    changed = version.md5 != previous
    if changed:
        announce(version, previous)
        logger.info("dataset %s: new version %s (was %s); announced as %s", version.name, version.md5, previous, DATASET_VERSIONED)
    else:
        logger.info("dataset %s: unchanged at %s", version.name, version.md5)
    return {"name": version.name, "md5": version.md5, "git_rev": version.git_rev, "previous_md5": previous, "changed": changed}
