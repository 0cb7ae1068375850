"""What every data stage task does around its own work: load the model it runs, write the dataset it makes.

A data stage runs a model (an earlier stage's weights, or a registered version's, tagged
on its run as a training stage's parents are) and writes a new DVC version of a dataset
derived from the one it read: the files it replaces, the rest hard-linked.
"""

from __future__ import annotations

from mlflow import MlflowClient
from pydantic import BaseModel
from torch import nn

from components.data.tokenizer import TextTokenizer
from components.training.checkpoints import init_part, load_weights
from components.training.stage_models import build_stage_model
from flows.context import PipelineContext
from flows.stage_task import parent_model, parent_model_tag
from mmops.recipe import DataStageConfig
from registry.data_repo import DatasetVersion, DvcRemote, version_derived_dataset


def data_stage_params(stage: DataStageConfig, dataset: str, settings: BaseModel | None = None) -> dict[str, str]:
    """The stage's fields as MLflow params, its kind's `settings` (if it has any) flattened under the objective's name."""
    fields = settings.model_dump() if settings is not None else {}
    return {"objective": stage.objective, "model": stage.model or "", "data": stage.data or "", "dataset": dataset} | {
        f"{stage.objective}.{key}": str(value) for key, value in fields.items()
    }


def data_stage_model(
    ctx: PipelineContext, stage: DataStageConfig, objective: str, tokenizer: TextTokenizer, client: MlflowClient, run_id: str
) -> tuple[nn.Module, dict[str, str]]:
    """The model `stage.model` names, built as `objective`'s, with its weights; and the registered versions
    it came from (source -> version), tagged on the stage's run."""
    model = build_stage_model(objective, ctx.recipe.model, tokenizer)
    parents: dict[str, str] = {}
    if stage.parent_models:
        parent = parent_model(ctx, stage.model, tokenizer)
        weights, parents = parent.weights, {stage.model: parent.version}
        client.set_tag(run_id, parent_model_tag(stage.model), parent.version)
    else:
        weights = ctx.stage_weights(stage.model)
    init_part(model, "*", load_weights(weights), stage.model)
    return model, parents


def write_dataset(
    ctx: PipelineContext, stage: DataStageConfig, source: DatasetVersion, files: dict[str, str], client: MlflowClient, run_id: str
) -> DatasetVersion:
    """`source` with `files` (name -> text) replaced, versioned as the stage's own dataset and tagged on its run."""
    written = version_derived_dataset(ctx.settings.datasets_repo, DvcRemote.from_settings(ctx.settings), ctx.recipe.dataset_name(stage), source, files)
    client.set_tag(run_id, "mmops.dataset_written", f"{written.name}@{written.md5}")
    return written
