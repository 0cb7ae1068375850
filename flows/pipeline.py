"""The pipeline of one recipe run: version data -> stages in order -> evaluate -> register -> gate and promote.

A stage trains (weights for later stages) or, as a data stage (CapFilt), writes a
dataset version that later stages name with `data:`.

Thin orchestration: every step is a task that calls components (model math)
or registry (MLflow, DVC, audit log).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.capfilt_task import run_capfilt
from flows.context import DataStageOutcome, PipelineContext, StageOutcome
from flows.data_task import version_data
from flows.evaluate_task import evaluate
from flows.feedback_task import run_feedback
from flows.recaption_task import run_recaption
from flows.interrupted_run import (
    SUMMARY_FILE, close_stopped_run, finished_data_outcome, record_dataset, save_data_outcome, stopped_run, write_run_record,
)
from flows.lineage_recorder import PipelineLineage
from flows.register_task import code_revision, gate_and_promote, register
from flows.stage_task import run_stage
from mmops.recipe import DataStageConfig, load_recipe, with_training_settings
from mmops.redaction import redact
from mmops.settings import Settings, export_library_environment
from registry.data_repo import DatasetVersion
from registry.lineage import open_store
from registry.model_versions import PRODUCTION, alias_version, resolve_model_version
from registry.storage_errors import storage_failure
from registry.tracking import client_for, experiment_id

DATA_STAGE_TASKS = {"capfilt": run_capfilt, "feedback": run_feedback, "recaption": run_recaption}
"""The task that runs each kind of data stage."""


@dataclass(frozen=True)
class PipelineSummary:
    model: str
    version: str
    promoted: bool
    request_id: int | None
    """The promotion request awaiting approval, when the recipe requires one and the gate passed."""
    production_version: str | None
    gate_reasons: tuple[str, ...]
    dataset: dict
    datasets_written: dict[str, dict]
    """data stage -> the dataset version it wrote (name, md5, git_rev, path)"""
    pipeline_run_id: str
    stage_runs: dict[str, str]
    stage_seconds: dict[str, float]
    metrics: dict[str, float]
    seconds: float
    workdir: str
    tracking_uri: str

    def to_dict(self) -> dict:
        return asdict(self)


def _describe(dataset: DatasetVersion) -> dict:
    return {"name": dataset.name, "md5": dataset.md5, "git_rev": dataset.git_rev, "path": str(dataset.path)}


def run_data_stage(ctx: PipelineContext, stage: DataStageConfig, reads: DatasetVersion, logger) -> DataStageOutcome:
    """The data stage's task, or, resuming, what it wrote before the run stopped (if that version is still there)."""
    if ctx.resume and (finished := finished_data_outcome(ctx.stage_dir(stage.name), ctx.settings.datasets_repo)) is not None:
        logger.info("data stage %s finished before the run stopped: its dataset %s md5 %s and MLflow run %s are reused",
                    stage.name, finished.dataset.name, finished.dataset.md5, finished.run_id)
        return finished
    outcome = DATA_STAGE_TASKS[stage.objective](ctx, stage, reads)
    save_data_outcome(ctx.stage_dir(stage.name), outcome)
    return outcome


@flow(name="mmops-pipeline", log_prints=True)
def pipeline(recipe_path: str, workdir: str, resume: bool = False) -> dict:
    """Run one recipe end to end in a workdir and return the summary; with `resume`, continue the latest run of
    the recipe that stopped before it finished (see flows.interrupted_run)."""
    started = time.perf_counter()
    logger = get_run_logger()
    settings = Settings.for_workdir(workdir)
    loaded = with_training_settings(load_recipe(recipe_path), settings.distributed, settings.sources)
    recipe = loaded.recipe
    export_library_environment(settings)  # a worker's flow run starts here, not in the CLI
    for uri in recipe.parent_models:  # before anything is written: a missing parent fails now, not stages later
        logger.info("parent model %s is %s", uri, resolve_model_version(settings, uri))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    prefect_run_id = str(flow_run.get_id() or "")
    stopped: str | None = None  # the MLflow run this one resumes
    if resume:
        run_dir, record = stopped_run(settings.runs_dir, loaded)
        stopped = record["mlflow_run_id"]
        logger.info("resuming the run in %s (MLflow run %s)", run_dir, stopped)
    else:
        run_dir = settings.runs_dir / f"{recipe.name}-{stamp}"
        run_dir.mkdir(parents=True, exist_ok=False)

    client = client_for(settings)
    exp = experiment_id(client, recipe.name, settings)
    run = client.create_run(
        exp,
        run_name=f"{recipe.name}-{stamp}",
        tags={MLFLOW_RUN_NAME: f"{recipe.name}-{stamp}", "mmops.recipe.sha256": loaded.sha256,
              "mmops.prefect_flow_run": prefect_run_id, **({"mmops.resumed_from": stopped} if stopped else {})},
    )
    write_run_record(run_dir, loaded, run.info.run_id, stopped)
    ctx = PipelineContext(settings, loaded, run_dir, exp, run.info.run_id, code_revision(), resume=resume)
    lineage: PipelineLineage | None = None
    with open_store(settings.lineage_url) as store:
        try:
            if stopped is not None:
                close_stopped_run(client, store, exp, stopped, run.info.run_id)
            client.log_text(run.info.run_id, loaded.text, "recipe.yaml")
            dataset = version_data(settings, recipe.data)
            record_dataset(run_dir, dataset)
            client.set_tag(run.info.run_id, "mmops.dataset.md5", dataset.md5)
            lineage = PipelineLineage.start(store, loaded, dataset, ctx.code_rev, run.info.run_id, prefect_run_id or None, settings.workdir)
            outcomes: list[StageOutcome | DataStageOutcome] = []
            written: dict[str, DatasetVersion] = {}  # data stage -> the dataset version it wrote
            for position, stage in enumerate(recipe.stages):
                reads = dataset if stage.data is None else written[stage.data]
                if isinstance(stage, DataStageConfig):
                    outcomes.append(run_data_stage(ctx, stage, reads, logger))
                    written[stage.name] = outcomes[-1].dataset
                    lineage.data_stage(stage, position, outcomes[-1])
                else:
                    outcomes.append(run_stage(ctx, stage, reads))
                    lineage.stage(stage, position, outcomes[-1])
            metrics = evaluate(ctx, dataset)
            lineage.evaluation(recipe.final_stage.name, metrics)
            version = register(ctx, dataset, outcomes, lineage)
            outcome = gate_and_promote(ctx, version, metrics, store)
            client.set_terminated(run.info.run_id, "FINISHED")
            lineage.finish(None)
        except BaseException as error:
            explained = storage_failure(error, settings)
            client.set_terminated(run.info.run_id, "FAILED")
            if lineage is not None:
                lineage.finish(explained or error)
            if explained is not None:
                raise explained from error
            raise
    summary = PipelineSummary(
        model=recipe.name,
        version=version,
        promoted=outcome.promoted,
        request_id=outcome.request_id,
        production_version=alias_version(client, recipe.name, PRODUCTION),
        gate_reasons=outcome.decision.reasons,
        dataset=_describe(dataset),
        datasets_written={name: _describe(version) for name, version in written.items()},
        pipeline_run_id=run.info.run_id,
        stage_runs={o.name: o.run_id for o in outcomes},
        stage_seconds={o.name: round(o.seconds, 1) for o in outcomes},
        metrics=metrics,
        seconds=round(time.perf_counter() - started, 1),
        workdir=str(settings.workdir),
        tracking_uri=redact(settings.tracking_uri),  # the summary is printed and saved: no password in it
    )
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary.to_dict(), indent=2))
    logger.info("pipeline finished in %.1fs: %s v%s (%s)", summary.seconds, recipe.name, version,
                "production" if outcome.promoted else "candidate")
    return summary.to_dict()

