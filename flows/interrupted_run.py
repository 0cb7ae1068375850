"""Picking up a pipeline run that stopped before it finished (killed, out of memory, its machine gone).

A run's folder gets `run.json` when it starts (the recipe's name and sha256, the MLflow run) and
`summary.json` when it finishes, so a folder without the summary holds a run that stopped. `mmops run
--resume` continues the latest such run of the recipe in a new MLflow run and lineage record over the same
folder: stages that finished are reused as they were (each left `outcome.json` in its folder: a training stage
beside its weights, a data stage naming the dataset version it wrote), the stage that was training goes on from
its latest training checkpoint, and the rest run as usual. The stopped run is closed as failed, naming the run
that resumed it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sqlalchemy import select

from flows.context import DataStageOutcome, StageOutcome
from mmops.errors import PipelineError
from mmops.recipe import LoadedRecipe
from registry.data_repo import DatasetVersion, current_md5
from registry.lineage import LineageStore, finish_pipeline_run
from registry.lineage.schema import PipelineRun, RunStatus

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
OUTCOME_FILE = "outcome.json"


def write_run_record(run_dir: Path, loaded: LoadedRecipe, mlflow_run_id: str, resumed_from: str | None) -> None:
    record = {"recipe": loaded.recipe.name, "recipe_sha256": loaded.sha256, "mlflow_run_id": mlflow_run_id,
              "started": datetime.now(UTC).isoformat(), "resumed_from": resumed_from, "host": socket.gethostname(), "pid": os.getpid()}
    (run_dir / RUN_FILE).write_text(json.dumps(record, indent=2))


def record_dataset(run_dir: Path, dataset: DatasetVersion) -> None:
    """The dataset version the run trains on, in its start record: `mmops train-stage` reads it from there."""
    record = json.loads((run_dir / RUN_FILE).read_text())
    record["dataset"] = _dataset_fields(dataset)
    (run_dir / RUN_FILE).write_text(json.dumps(record, indent=2))


def _dataset_fields(dataset: DatasetVersion) -> dict:
    return asdict(dataset) | {"path": str(dataset.path)}


def _dataset_from(fields: dict) -> DatasetVersion:
    return DatasetVersion(**(fields | {"path": Path(fields["path"])}))


def recorded_dataset(run_dir: Path, record: dict) -> DatasetVersion:
    if "dataset" not in record:
        raise PipelineError(f"the run in {run_dir} stopped before it versioned its dataset: resume it with `mmops run --resume` first")
    return _dataset_from(record["dataset"])


def stopped_run(runs_dir: Path, loaded: LoadedRecipe) -> tuple[Path, dict]:
    """The folder and start record of the latest run of the recipe that did not finish; refused when there is
    none, or when the recipe has changed since that run started."""
    name = loaded.recipe.name
    stopped = []
    for folder in runs_dir.glob(f"{name}-*") if runs_dir.is_dir() else ():
        if (folder / SUMMARY_FILE).exists() or not (folder / RUN_FILE).is_file():
            continue
        record = json.loads((folder / RUN_FILE).read_text())
        if record.get("recipe") == name:
            stopped.append((record["started"], folder, record))
    if not stopped:
        raise PipelineError(f"nothing to resume: no run of {name} in {runs_dir} stopped before it finished (run it without --resume)")
    _, folder, record = max(stopped)
    if record.get("host") == socket.gethostname() and _alive(record.get("pid")):
        raise PipelineError(f"the latest run of {name}, in {folder}, has not stopped: process {record['pid']} is still running it; "
                            "wait for it, or stop it, before resuming")
    if record["recipe_sha256"] != loaded.sha256:
        raise PipelineError(
            f"{loaded.path}: the recipe changed since the stopped run in {folder} started (sha256 {record['recipe_sha256'][:12]} "
            f"then, {loaded.sha256[:12]} now); --resume continues a run with its own recipe: restore that, or run without --resume"
        )
    return folder, record


def _alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():  # this process is resuming it, or recording its own start
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def close_stopped_run(client: MlflowClient, store: LineageStore, experiment_id: str, stopped_id: str, resumed_by: str) -> None:
    """The stopped run and its stages that were still running, failed in MLflow and the lineage store."""
    note = f"stopped before it finished; resumed by run {resumed_by}"
    children = client.search_runs([experiment_id], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{stopped_id}'")
    for run in [client.get_run(stopped_id), *children]:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "FAILED")
    client.set_tag(stopped_id, "mmops.resumed_by", resumed_by)
    with store.session() as session:
        recorded = session.scalar(select(PipelineRun).where(PipelineRun.mlflow_run_id == stopped_id))
        if recorded is not None and recorded.status == RunStatus.RUNNING:
            finish_pipeline_run(session, recorded, "failed", note)


def save_data_outcome(stage_dir: Path, outcome: DataStageOutcome) -> None:
    """What a finished data stage wrote (its dataset version), in its folder of the run, for a resumed run and
    `mmops train-stage` to read."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    fields = asdict(outcome) | {"dataset": _dataset_fields(outcome.dataset)}
    (stage_dir / OUTCOME_FILE).write_text(json.dumps(fields, indent=2))


def finished_data_outcome(stage_dir: Path, datasets_repo: Path) -> DataStageOutcome | None:
    """The outcome a data stage left when it finished, if it did and the dataset it wrote is still that version in
    the datasets repository (a later write of the same dataset makes the stage run again)."""
    saved = stage_dir / OUTCOME_FILE
    if not saved.is_file():
        return None
    fields = json.loads(saved.read_text())
    dataset = _dataset_from(fields["dataset"])
    if current_md5(datasets_repo, dataset.name) != dataset.md5 or not dataset.path.is_dir():
        return None
    return DataStageOutcome(**(fields | {"dataset": dataset}))


def save_outcome(outcome: StageOutcome) -> None:
    """What a finished stage produced, beside its weights, for a resumed run to reuse."""
    fields = asdict(outcome) | {"weights": str(outcome.weights)}
    (outcome.weights.parent / OUTCOME_FILE).write_text(json.dumps(fields, indent=2))


def finished_outcome(weights: Path) -> StageOutcome | None:
    """The outcome a stage left when it finished, if it did and its weights are still there."""
    saved = weights.parent / OUTCOME_FILE
    if not saved.is_file() or not weights.is_file():
        return None
    fields = json.loads(saved.read_text())
    return StageOutcome(**(fields | {"weights": Path(fields["weights"])}))
