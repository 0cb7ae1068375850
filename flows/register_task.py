"""Register the evaluated model in MLflow with its lineage, then let the recipe's gate decide on production."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import TOKENIZER_FILE
from components.training.objectives import CONTRASTIVE_OBJECTIVES, GENERATIVE_OBJECTIVES
from flows.context import DataStageOutcome, PipelineContext, StageOutcome
from flows.lineage_recorder import PipelineLineage
from flows.pretrained_artifacts import pretrained_config_artifacts
from registry.access import Actor
from registry.data_repo import DatasetVersion
from registry.lineage import LineageStore
from registry.model_versions import (
    PRODUCTION,
    GateDecision,
    evaluate_gate,
    register_candidate,
    version_by_alias,
    version_metrics,
)
from registry.promotion import PromotionWorkflow
from registry.tracking import tracking

GATE = Actor("mmops-gate", frozenset({"promote"}))


def model_code(objective: str) -> Path:
    """The pyfunc file that serves a model of the output stage's objective."""
    if objective in GENERATIVE_OBJECTIVES:
        return Path(__file__).with_name("video_pyfunc.py")
    name = "clip_pyfunc.py" if objective in CONTRASTIVE_OBJECTIVES else "llava_pyfunc.py"
    return Path(__file__).with_name(name)


REQUIREMENTS = ["torch", "safetensors", "tokenizers", "pillow", "numpy", "pandas", "pydantic", "mlflow"]


def code_revision() -> str:
    """The git revision of the mmops code that ran (or 'unknown' outside a checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def lineage_tags(ctx: PipelineContext, dataset: DatasetVersion, stages: list[StageOutcome | DataStageOutcome]) -> dict[str, str]:
    parents = sorted({resolved for s in stages for resolved in s.parent_models.values()})
    return {
        "mmops.dataset.name": dataset.name,
        "mmops.dataset.md5": dataset.md5,
        "mmops.dataset.git_rev": dataset.git_rev,
        "mmops.code.git_rev": ctx.code_rev,
        "mmops.recipe.sha256": ctx.loaded.sha256,
        "mmops.recipe.path": str(ctx.loaded.path),
        "mmops.parent_models": ",".join(parents),
        "mmops.stage_runs": json.dumps({s.name: s.run_id for s in stages}),  # in stage order
        "mmops.pipeline_run": ctx.pipeline_run_id,
        "mmops.output_stage": ctx.recipe.final_stage.name,
        # the datasets data stages wrote (CapFilt's), which later stages trained on: name@md5
        "mmops.datasets_written": ",".join(f"{s.dataset.name}@{s.dataset.md5}" for s in stages if isinstance(s, DataStageOutcome)),
    }


@task(name="register", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register(ctx: PipelineContext, dataset: DatasetVersion, stages: list[StageOutcome | DataStageOutcome], lineage: PipelineLineage) -> str:
    """Register in MLflow, then record in the lineage store; if the record fails, the MLflow
    version is deleted again, so no version exists in one and not the other."""
    logger = get_run_logger()
    recipe = ctx.recipe
    spec = ctx.run_dir / "model_config.json"
    spec.write_text(json.dumps({
        "model": recipe.model.model_dump(mode="json"),
        "objective": recipe.final_stage.objective,  # which family builder makes the served model
        "max_new_tokens": recipe.evaluation.max_new_tokens,
        "sampling": recipe.evaluation.generation.sampling.model_dump(mode="json"),  # a generator's sampler,
        "expand_prompts": recipe.evaluation.generation.expand_prompts,  # and whether its prompts are expanded first
    }))
    hf_configs = pretrained_config_artifacts(recipe.model, ctx.run_dir / "hf_configs")  # pretrained towers: configs only
    artifacts = {
        "weights": str(ctx.stage_weights(recipe.final_stage.name)),
        "tokenizer": str(dataset.path / TOKENIZER_FILE),
        "model_config": str(spec),
        **hf_configs,
    }
    requirements = REQUIREMENTS + (["transformers"] if hf_configs else [])
    with tracking(ctx.settings) as client:
        with mlflow.start_run(run_id=ctx.pipeline_run_id):
            code = model_code(recipe.final_stage.objective)
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code), artifacts=artifacts, pip_requirements=requirements)
        version = register_candidate(client, recipe.name, info.model_uri, lineage_tags(ctx, dataset, stages))
        number = str(version.version)
        try:
            lineage.model_version(recipe.name, number, recipe.final_stage.name, ctx.pipeline_run_id)
        except BaseException:
            client.delete_model_version(recipe.name, number)
            raise
    logger.info("registered %s version %s (alias candidate)", recipe.name, number)
    return number


@dataclass(frozen=True)
class GateOutcome:
    decision: GateDecision
    promoted: bool
    request_id: int | None = None
    """Set when the recipe requires approval: the request an approver must approve."""


@task(name="gate-and-promote", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def gate_and_promote(ctx: PipelineContext, version: str, metrics: dict[str, float], store: LineageStore) -> GateOutcome:
    logger = get_run_logger()
    gate = ctx.recipe.promotion
    name = ctx.recipe.name
    with tracking(ctx.settings) as client:
        current = version_by_alias(client, name, PRODUCTION)
        production = version_metrics(client, current) if current else None
        decision = evaluate_gate(
            gate.thresholds, gate.not_worse_than_production, gate.tolerance, metrics, production,
            str(current.version) if current else None,
        )
        client.set_model_version_tag(name, version, "mmops.gate", "passed" if decision.passed else "failed")
        client.set_model_version_tag(name, version, "mmops.gate.evidence", json.dumps(decision.evidence, sort_keys=True))
        if not decision.passed:
            client.set_model_version_tag(name, version, "mmops.gate.reasons", "; ".join(decision.reasons))
            logger.warning("%s version %s stays a candidate: %s", name, version, "; ".join(decision.reasons))
            return GateOutcome(decision, promoted=False)
        reason = "gate passed: " + ", ".join(f"{k}={v:.4f}" for k, v in decision.evidence["candidate"].items() if v is not None)
        workflow = PromotionWorkflow(store, client, ctx.settings.audit_log)
        if gate.require_approval:
            request = workflow.request(GATE, name, version, reason, decision.evidence)
            logger.info("%s version %s passed the gate; promotion request #%d awaits approval", name, version, request.id)
            return GateOutcome(decision, promoted=False, request_id=request.id)
        workflow.promote(GATE, name, version, reason, decision.evidence)
        logger.info("promoted %s version %s to production", name, version)
        return GateOutcome(decision, promoted=True)
