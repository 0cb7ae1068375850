"""What the tasks of one pipeline run share: settings, the recipe, the run's folder and MLflow run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmops.recipe import LoadedRecipe
from mmops.settings import Settings
from registry.data_repo import DatasetVersion
from registry.model_versions import WEIGHTS_FILE


@dataclass(frozen=True)
class PipelineContext:
    settings: Settings
    loaded: LoadedRecipe
    run_dir: Path
    experiment_id: str
    pipeline_run_id: str
    code_rev: str
    resume: bool = False
    """Resuming a stopped run: finished stages are reused, and training goes on from the latest checkpoint."""

    @property
    def recipe(self):
        return self.loaded.recipe

    def stage_dir(self, stage: str) -> Path:
        """What a stage of this run leaves: its weights (a training stage) and its `outcome.json`."""
        return self.run_dir / "stages" / stage

    def stage_weights(self, stage: str) -> Path:
        return self.stage_dir(stage) / WEIGHTS_FILE


@dataclass
class StageOutcome:
    name: str
    run_id: str
    weights: Path
    seconds: float
    final_loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    parent_models: dict[str, str] = field(default_factory=dict)
    """models:/ URI -> the resolved 'name/version' this stage started from."""


@dataclass
class DataStageOutcome:
    """What a data stage (CapFilt, feedback, re-captioning) produced: a dataset version, not weights."""

    name: str
    run_id: str
    dataset: DatasetVersion
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    parent_models: dict[str, str] = field(default_factory=dict)
