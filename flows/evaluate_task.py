"""Evaluate the output stage's model on the test split and log the metrics to the pipeline run.

What is measured follows what the model does: a model that answers questions
is scored on VQA and grounding (one that reads text pages, on its text blocks and
markdown); a contrastive model on zero-shot classification and retrieval; a
text-to-video model on held-out denoising and on how often its samples show
what their captions ask (flows.generation_evaluation).
"""

from __future__ import annotations

import json

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import load_dataset_tokenizer
from components.data.coordinate_bins import bins_of
from components.data.location_tokens import required_grid
from components.data.pages_dataset import reading_file
from components.evaluation.llava_eval import evaluate_llava
from components.evaluation.reading import read_pages
from components.evaluation.retrieval import retrieval_metrics
from components.evaluation.zero_shot import zero_shot_accuracy
from components.training.checkpoints import load_weights
from components.training.objectives import CONTRASTIVE_OBJECTIVES, GENERATIVE_OBJECTIVES, OFA_OBJECTIVES
from components.training.stage_data import captions_file, instruct_file
from components.training.stage_models import build_stage_model
from flows.answer_evaluations import grounded_captions, ofa_tasks, text_only, with_feedback
from flows.context import PipelineContext
from flows.generation_evaluation import evaluate_generation
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
    elif stage.objective in GENERATIVE_OBJECTIVES:
        metrics, predictions = evaluate_generation(ctx, dataset, model, tokenizer, logger)
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
    """VQA exact match and grounding IoU from greedy answers; with few_shot, the zero-shot figures too; and
what the recipe's evaluation options add (flows.answer_evaluations)."""
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    ofa = recipe.final_stage.objective in OFA_OBJECTIVES
    grid = required_grid(tokenizer.vocabulary()) if recipe.final_stage.location_tokens else bins_of(tokenizer.vocabulary()) if ofa else None

    def progress(done: int, total: int) -> None:
        logger.info("evaluate: %d/%d answers", done, total)

    if recipe.final_stage.corpus == "pages":  # a page reader (KOSMOS-2.5) reads its test pages, asked nothing about scenes
        with torch.inference_mode():
            return read_pages(model, tokenizer, reading_file(dataset.path, "test"), dataset.path, recipe.model.vision.image_size,
                              cfg.batch_size, cfg.max_new_tokens, cfg.limit, progress, grid)

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
        metrics |= text_only(ctx, dataset, model, tokenizer, progress)
    if cfg.feedback_rounds:
        metrics |= with_feedback(ctx, dataset, model, tokenizer, progress)
    if recipe.final_stage.location_tokens:
        metrics |= grounded_captions(ctx, dataset, model, tokenizer, grid, progress)
    if ofa:
        metrics |= ofa_tasks(ctx, dataset, model, tokenizer, progress)
    return metrics, predictions


def _contrastive(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer) -> tuple[dict[str, float], list[dict]]:
    """Zero-shot classification with the recipe's prompt templates, and retrieval R@1/5/10 both ways."""
    recipe = ctx.recipe
    captions, size = captions_file(dataset.path, "test"), recipe.model.vision.image_size
    with torch.inference_mode():
        metrics = zero_shot_accuracy(model, tokenizer, captions, dataset.path, size, recipe.evaluation.zero_shot_templates)
        retrieval, predictions = retrieval_metrics(model, tokenizer, captions, dataset.path, size, rerank_k=recipe.evaluation.rerank_top_k)
    return metrics | retrieval, predictions
