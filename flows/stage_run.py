"""The MLflow run of one stage (training or data), nested under the pipeline's run."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from flows.context import PipelineContext
from registry.data_repo import DatasetVersion
from registry.tracking import client_for, log_dataset_input


def open_stage_run(ctx: PipelineContext, stage: str, params: dict[str, str], reads: DatasetVersion) -> tuple[MlflowClient, str]:
    """A new nested run with the stage's params and the dataset version it reads as its input; the caller
    ends it (FINISHED or FAILED)."""
    client = client_for(ctx.settings)
    run = client.create_run(
        ctx.experiment_id,
        run_name=stage,
        tags={MLFLOW_PARENT_RUN_ID: ctx.pipeline_run_id, MLFLOW_RUN_NAME: stage, "mmops.stage": stage},
    )
    run_id = run.info.run_id
    try:
        client.log_batch(run_id, params=[mlflow.entities.Param(k, v) for k, v in params.items()])
        log_dataset_input(client, run_id, reads.name, reads.md5, {"git_rev": reads.git_rev, "path": f"data/{reads.name}"}, "train")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return client, run_id
