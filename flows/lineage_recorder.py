"""What one pipeline run writes to the lineage store, one short transaction per step.

The recorder keeps only row ids between steps, so no session stays open while a
stage trains (an open SQLite transaction would block every other writer).
A model version is recorded in the same step that registers it in MLflow, and
the registration is undone if the record fails: the store and MLflow agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from flows.context import DataStageOutcome, StageOutcome
from mmops.recipe import DataStageConfig, LoadedRecipe, StageConfig
from registry import lineage
from registry.data_repo import DatasetVersion
from registry.lineage import LineageStore
from registry.lineage.schema import Checkpoint, PipelineRun

EVALUATION_SPLIT = "test"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class PipelineLineage:
    store: LineageStore
    pipeline_run_id: int
    dataset_id: int
    checkpoints: dict[str, int] = field(default_factory=dict)
    """stage name -> id of the checkpoint it produced"""
    written: dict[str, int] = field(default_factory=dict)
    """data stage name -> id of the dataset version it wrote"""
    evaluation_id: int | None = None

    @classmethod
    def start(
        cls,
        store: LineageStore,
        loaded: LoadedRecipe,
        dataset: DatasetVersion,
        code_rev: str,
        mlflow_run_id: str,
        prefect_flow_run_id: str | None,
        workdir: Path,
    ) -> PipelineLineage:
        with store.session() as session:
            data = lineage.dataset_version(session, dataset.name, dataset.md5, dataset.git_rev, str(dataset.path))
            recipe = lineage.recipe(session, loaded.sha256, loaded.recipe.name, loaded.recipe.family, loaded.text)
            code = lineage.code_version(session, code_rev)
            run = lineage.start_pipeline_run(session, mlflow_run_id, recipe, code, str(workdir), prefect_flow_run_id)
            return cls(store, run.id, data.id)

    def stage(self, stage: StageConfig, position: int, outcome: StageOutcome) -> None:
        """The stage, the dataset it read, where each model part started from, and its checkpoint."""
        with self.store.session() as session:
            run = session.get_one(PipelineRun, self.pipeline_run_id)
            parent_checkpoints, parent_models = self._parents(session, stage.init, outcome.parent_models)
            recorded = lineage.record_stage_run(
                session, run, stage.name, stage.objective, position, outcome.run_id, [self._read(session, stage.data)],
                parent_checkpoints, parent_models, outcome.seconds, outcome.final_loss, outcome.metrics,
            )
            checkpoint = lineage.record_checkpoint(session, recorded, str(outcome.weights), file_sha256(outcome.weights))
            self.checkpoints[stage.name] = checkpoint.id

    def data_stage(self, stage: DataStageConfig, position: int, outcome: DataStageOutcome) -> None:
        """A data stage: the dataset it read, the model it ran (as part '*'; a re-captioning stage runs none), and the
        dataset it wrote."""
        with self.store.session() as session:
            run = session.get_one(PipelineRun, self.pipeline_run_id)
            ran = {"*": stage.model} if stage.model is not None else {}
            parent_checkpoints, parent_models = self._parents(session, ran, outcome.parent_models)
            recorded = lineage.record_stage_run(
                session, run, stage.name, stage.objective, position, outcome.run_id, [self._read(session, stage.data)],
                parent_checkpoints, parent_models, outcome.seconds, None, outcome.metrics,
            )
            out = outcome.dataset
            written = lineage.dataset_version(session, out.name, out.md5, out.git_rev, str(out.path))
            lineage.record_dataset_producer(session, written, recorded)
            self.written[stage.name] = written.id

    def _read(self, session: Session, data_stage: str | None) -> lineage.DatasetVersion:
        """The dataset version a stage reads: the recipe's, or the one an earlier data stage wrote."""
        return session.get_one(lineage.DatasetVersion, self.dataset_id if data_stage is None else self.written[data_stage])

    def _parents(
        self, session: Session, init: dict[str, str], resolved: dict[str, str]
    ) -> tuple[dict[str, Checkpoint], dict[str, lineage.ModelVersion]]:
        """Per model part, the checkpoint (an earlier stage's) or model version (models:/...) it started from."""
        parent_checkpoints, parent_models = {}, {}
        for part, source in init.items():
            if source.startswith("models:/"):
                name, _, version = resolved[source].partition("/")
                parent_models[part] = lineage.find_model_version(session, name, version)
            else:
                parent_checkpoints[part] = session.get_one(Checkpoint, self.checkpoints[source])
        return parent_checkpoints, parent_models

    def evaluation(self, final_stage: str, metrics: dict[str, float]) -> None:
        with self.store.session() as session:
            evaluation = lineage.record_evaluation(
                session,
                session.get_one(PipelineRun, self.pipeline_run_id),
                session.get_one(Checkpoint, self.checkpoints[final_stage]),
                session.get_one(lineage.DatasetVersion, self.dataset_id),
                EVALUATION_SPLIT,
                metrics,
            )
            self.evaluation_id = evaluation.id

    def model_version(self, name: str, version: str, final_stage: str, mlflow_run_id: str) -> None:
        with self.store.session() as session:
            evaluation = None if self.evaluation_id is None else session.get_one(lineage.Evaluation, self.evaluation_id)
            lineage.record_model_version(
                session, name, version,
                session.get_one(Checkpoint, self.checkpoints[final_stage]),
                session.get_one(PipelineRun, self.pipeline_run_id),
                evaluation, mlflow_run_id,
            )

    def finish(self, error: BaseException | None) -> None:
        with self.store.session() as session:
            run = session.get_one(PipelineRun, self.pipeline_run_id)
            status = "failed" if error else "finished"
            lineage.finish_pipeline_run(session, run, status, None if error is None else f"{type(error).__name__}: {error}")
