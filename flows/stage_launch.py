"""One training stage on every rank of a launcher (torchrun, srun, a Kubernetes job): `mmops train-stage`.

A pipeline cannot start processes on other machines. When it reaches a stage spread over processes it cannot
start itself, it stops, keeping what it trained (flows.stage_task.require_startable_here). Every rank then runs
this: the stage of that stopped run, on the dataset version the run recorded (or the one a data stage of the run
wrote), from the weights of its earlier stages; Lightning reads the ranks from the launcher's environment. Rank 0
records the stage as the pipeline would (a nested MLflow run, the weights, `outcome.json`), and `mmops run
--resume` carries the run on from there. No Prefect: a launcher's processes are not flow runs.
"""

from __future__ import annotations

import logging

from components.training.launchers import global_rank
from flows.context import PipelineContext, StageOutcome
from flows.interrupted_run import finished_data_outcome, finished_outcome, recorded_dataset, stopped_run
from flows.register_task import code_revision
from flows.stage_task import train_one_stage
from mmops.errors import PipelineError
from mmops.recipe import DataStageConfig, LoadedRecipe
from mmops.settings import Settings
from registry.tracking import client_for, experiment_id

logger = logging.getLogger("mmops.train_stage")


def train_stage_on_this_rank(loaded: LoadedRecipe, settings: Settings, stage_name: str) -> StageOutcome | None:
    """This rank's part of the stage; rank 0 returns the recorded outcome, the others None."""
    recipe = loaded.recipe
    names = [s.name for s in recipe.stages]
    if stage_name not in names:
        raise PipelineError(f"{loaded.path}: no stage {stage_name!r} (stages: {', '.join(names)})")
    stage = recipe.stage(stage_name)
    if isinstance(stage, DataStageConfig):
        raise PipelineError(f"{loaded.path}: {stage_name} is a data stage; train-stage trains a training stage ({', '.join(names)})")
    run_dir, record = stopped_run(settings.runs_dir, loaded)
    dataset = recorded_dataset(run_dir, record)
    rank = global_rank()
    experiment = experiment_id(client_for(settings), recipe.name, settings) if rank == 0 else ""  # rank 0 records
    ctx = PipelineContext(settings, loaded, run_dir, experiment, record["mlflow_run_id"], code_revision(), resume=True)
    if finished_outcome(ctx.stage_weights(stage_name)) is not None:
        raise PipelineError(f"stage {stage_name} of the run in {run_dir} has finished already: `mmops run {loaded.path} --resume` goes on")
    unfinished = [parent for parent in stage.parent_stages if finished_outcome(ctx.stage_weights(parent)) is None]
    if unfinished:
        raise PipelineError(f"stage {stage_name} starts from {', '.join(unfinished)}, which the run in {run_dir} has not finished; "
                            f"`mmops run {loaded.path} --resume` trains them (or train-stage each, in order)")
    if stage.data is not None:  # the dataset a data stage of the run wrote
        written = finished_data_outcome(ctx.stage_dir(stage.data), settings.datasets_repo)
        if written is None:
            raise PipelineError(f"stage {stage_name} trains on what data stage {stage.data} writes, which the run in {run_dir} has not "
                                f"written (or it was written again since); `mmops run {loaded.path} --resume` runs it")
        dataset = written.dataset
    logger.info("rank %d: stage %s of the run in %s, on %s md5 %s", rank, stage_name, run_dir, dataset.name, dataset.md5)
    return train_one_stage(ctx, stage, dataset, logger, tracked=rank == 0)
