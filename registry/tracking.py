"""MLflow handles, built from settings and passed around (no module-level tracking state)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag

from mmops.settings import Settings


def client_for(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


@contextmanager
def tracking(settings: Settings) -> Iterator[MlflowClient]:
    """Point MLflow's fluent API at these settings for the duration of a block, then restore it.

    The fluent API (log_model, register_model) reads a process-wide URI; this is
    the one place that sets it.
    """
    previous, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    try:
        yield client_for(settings)
    finally:
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(previous_registry)


def experiment_id(client: MlflowClient, name: str, settings: Settings) -> str:
    """The experiment of a model name; created with its artifacts under the settings' artifact location."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=f"{settings.artifact_location.rstrip('/')}/{name}")


def log_dataset_input(client: MlflowClient, run_id: str, name: str, md5: str, source: dict, context: str) -> None:
    """Record a DVC dataset version as an MLflow run input; its digest is the DVC md5."""
    dataset = Dataset(name=name, digest=md5, source_type="dvc", source=json.dumps(source, sort_keys=True))
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])])
