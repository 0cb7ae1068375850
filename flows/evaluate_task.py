"""Evaluate the output stage's model on the test split and log the metrics to the pipeline run.

What is measured follows what the model does: a model that answers questions
is scored on VQA and grounding; a contrastive model on zero-shot
classification and retrieval.
"""

from __future__ import annotations

import copy
import json

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import load_dataset_tokenizer
from components.evaluation.feedback_eval import exchange_records, feedback_metrics
from components.evaluation.grounded_captions import grounded_caption_metrics
from components.evaluation.llava_eval import eval_items, evaluate_llava
from components.evaluation.retrieval import retrieval_metrics
from components.evaluation.text_only import evaluate_text_only
from components.inference.feedback import answer_with_feedback
from components.evaluation.zero_shot import zero_shot_accuracy
from components.training.checkpoints import init_part, load_weights
from components.training.objectives import CONTRASTIVE_OBJECTIVES
from components.training.stage_data import captions_file, instruct_file
from components.training.stage_models import build_stage_model
from flows.context import PipelineContext
from flows.stage_task import location_grid
from registry.data_repo import DatasetVersion
from registry.tracking import client_for


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(ctx: PipelineContext, dataset: DatasetVersion) -> dict[str, float]:
    logger = get_run_logger()
    recipe, stage = ctx.recipe, ctx.recipe.final_stage
    tokenizer = load_dataset_tokenizer(dataset.path)
    model = build_stage_model(stage.objective, recipe.model, tokenizer, load_pretrained=False)  # the stage's weights load next
    model.load_state_dict(load_weights(ctx.stage_weights(stage.name)))
    if stage.objective in CONTRASTIVE_OBJECTIVES:
        metrics, predictions = _contrastive(ctx, dataset, model, tokenizer)
    else:
        metrics, predictions = _answers(ctx, dataset, model, tokenizer, logger)
    client = client_for(ctx.settings)
    for key, value in metrics.items():
        client.log_metric(ctx.pipeline_run_id, key, value)
    path = ctx.run_dir / "predictions_test.json"
    path.write_text(json.dumps(predictions, indent=1))
    client.log_artifact(ctx.pipeline_run_id, str(path), artifact_path="evaluation")
    logger.info("evaluation: %s", ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    return metrics


def _answers(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, logger) -> tuple[dict[str, float], list[dict]]:
    """VQA exact match and grounding IoU from greedy answers; with few_shot, the zero-shot figures too."""
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    grid = location_grid(tokenizer) if recipe.final_stage.location_tokens else None

    def progress(done: int, total: int) -> None:
        logger.info("evaluate: %d/%d answers", done, total)

    def run(few_shot: int) -> tuple[dict[str, float], list[dict]]:
        with torch.inference_mode():
            return evaluate_llava(
                model, tokenizer, instruct_file(dataset.path, "test"), dataset.path, recipe.model.vision.image_size,
                cfg.batch_size, cfg.max_new_tokens, cfg.limit, progress, recipe.model.anyres_pinpoints,
                few_shot, instruct_file(dataset.path, "train"), grid,
            )

    metrics, predictions = run(cfg.few_shot)
    if cfg.few_shot:  # what the in-context examples add
        zero_shot, _ = run(0)
        metrics |= {f"{key}_0shot": value for key, value in zero_shot.items() if not key.endswith("_items")}
    if cfg.text_only_reference is not None:
        metrics |= _text_only(ctx, dataset, model, tokenizer, progress)
    if cfg.feedback_rounds:
        metrics |= _feedback(ctx, dataset, model, tokenizer, progress)
    if grid is not None:  # KOSMOS-2: grounded captions, each phrase checked against the scene's objects
        with torch.inference_mode():
            grounded, captions = grounded_caption_metrics(
                model, tokenizer, grid, captions_file(dataset.path, "test"), dataset.path, recipe.model.vision.image_size,
                cfg.batch_size, limit=cfg.limit, progress=progress,
            )
        metrics |= grounded
        path = ctx.run_dir / "grounded_captions_test.json"
        path.write_text(json.dumps(captions, indent=1))
        client_for(ctx.settings).log_artifact(ctx.pipeline_run_id, str(path), artifact_path="evaluation")
    return metrics, predictions


def _feedback(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, progress) -> dict[str, float]:
    """DRESS's measure: every test question answered, then answered again after each round of the critic's
    feedback; the same for the reference stage's model when the recipe names one. The exchanges are logged."""
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    items = eval_items(instruct_file(dataset.path, "test"), dataset.path, cfg.limit)

    def run(answering) -> tuple[dict[str, float], list]:
        with torch.inference_mode():
            exchanges = answer_with_feedback(answering, tokenizer, items, recipe.model.vision.image_size, cfg.feedback_rounds,
                                             cfg.batch_size, cfg.max_new_tokens, progress)
        return feedback_metrics(exchanges), exchanges

    metrics, exchanges = run(model)
    path = ctx.run_dir / "feedback_test.json"
    path.write_text(json.dumps(exchange_records(exchanges), indent=1))
    client_for(ctx.settings).log_artifact(ctx.pipeline_run_id, str(path), artifact_path="evaluation")
    if cfg.feedback_reference is not None:
        reference = copy.deepcopy(model)
        init_part(reference, "*", load_weights(ctx.stage_weights(cfg.feedback_reference)), cfg.feedback_reference)
        before, _ = run(reference)
        metrics |= {f"{key}_reference": value for key, value in before.items()}
    return metrics


def _text_only(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, progress) -> dict[str, float]:
    """VILA's measure: the test questions answered from their scene's caption alone, by the output model and
    by the same model with the reference stage's LM; what the multimodal stages kept of that skill."""
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    reference = copy.deepcopy(model)
    init_part(reference, "language_model", load_weights(ctx.stage_weights(cfg.text_only_reference)), cfg.text_only_reference)

    def run(answering) -> dict[str, float]:
        with torch.inference_mode():
            metrics, _ = evaluate_text_only(
                answering, tokenizer, instruct_file(dataset.path, "test"), captions_file(dataset.path, "test"),
                recipe.model.vision.image_size, cfg.batch_size, cfg.max_new_tokens, cfg.limit, progress,
            )
        return metrics

    output, before = run(model), run(reference)
    metrics = output | {f"{key}_reference": value for key, value in before.items() if not key.endswith("_items")}
    ours, theirs = output["text_only_exact_match"], before["text_only_exact_match"]
    metrics["text_only_degradation"] = theirs - ours
    if theirs > 0:  # a reference that answers nothing has nothing to retain
        metrics["text_only_retained"] = ours / theirs
    return metrics


def _contrastive(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer) -> tuple[dict[str, float], list[dict]]:
    """Zero-shot classification with the recipe's prompt templates, and retrieval R@1/5/10 both ways."""
    recipe = ctx.recipe
    captions, size = captions_file(dataset.path, "test"), recipe.model.vision.image_size
    with torch.inference_mode():
        metrics = zero_shot_accuracy(model, tokenizer, captions, dataset.path, size, recipe.evaluation.zero_shot_templates)
        retrieval, predictions = retrieval_metrics(model, tokenizer, captions, dataset.path, size, rerank_k=recipe.evaluation.rerank_top_k)
    return metrics | retrieval, predictions
