"""What an evaluation option adds to the answers' figures: text-only answers (VILA), answers after feedback
(DRESS), grounded captions (KOSMOS-2), captions and image infilling (OFA). Each returns metrics for the pipeline run and logs its own artifact."""

from __future__ import annotations

import copy
import json

import torch

from components.data.location_tokens import LocationGrid
from components.evaluation.feedback_eval import exchange_records, feedback_metrics
from components.evaluation.grounded_captions import grounded_caption_metrics
from components.evaluation.llava_eval import eval_items
from components.evaluation.ofa_eval import caption_metrics, infilling_metrics
from components.evaluation.text_only import evaluate_text_only
from components.inference.feedback import answer_with_feedback
from components.training.checkpoints import init_part, load_weights
from components.training.stage_data import captions_file, instruct_file
from flows.context import PipelineContext
from registry.data_repo import DatasetVersion
from registry.tracking import client_for


def with_feedback(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, progress) -> dict[str, float]:
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
    _log(ctx, "feedback_test.json", exchange_records(exchanges))
    if cfg.feedback_reference is not None:
        reference = copy.deepcopy(model)
        init_part(reference, "*", load_weights(ctx.stage_weights(cfg.feedback_reference)), cfg.feedback_reference)
        before, _ = run(reference)
        metrics |= {f"{key}_reference": value for key, value in before.items()}
    return metrics


def text_only(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, progress) -> dict[str, float]:
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


def grounded_captions(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, grid: LocationGrid, progress) -> dict[str, float]:
    """KOSMOS-2's measure: a grounded caption of every test image, each phrase and box checked against the scene."""
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    with torch.inference_mode():
        metrics, captions = grounded_caption_metrics(
            model, tokenizer, grid, captions_file(dataset.path, "test"), dataset.path, recipe.model.vision.image_size,
            cfg.batch_size, limit=cfg.limit, progress=progress,
        )
    _log(ctx, "grounded_captions_test.json", captions)
    return metrics


def ofa_tasks(ctx: PipelineContext, dataset: DatasetVersion, model, tokenizer, progress) -> dict[str, float]:
    """OFA's other instructions: a caption of every test image, and (with an image tokenizer) the middle of each
    infilled in image codes, with a preview of what it drew."""
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    captions, size = captions_file(dataset.path, "test"), recipe.model.vision.image_size
    with torch.inference_mode():
        metrics, records = caption_metrics(model, tokenizer, captions, dataset.path, size, cfg.batch_size, limit=cfg.limit, progress=progress)
        _log(ctx, "captions_test.json", records)
        if model.image_tokenizer is not None:
            infilled, preview = infilling_metrics(model, tokenizer, captions, dataset.path, size, cfg.batch_size, cfg.limit)
            metrics |= infilled
            path = ctx.run_dir / "infilling_test.png"
            preview.save(path)
            client_for(ctx.settings).log_artifact(ctx.pipeline_run_id, str(path), artifact_path="evaluation")
    return metrics


def _log(ctx: PipelineContext, name: str, records: list) -> None:
    path = ctx.run_dir / name
    path.write_text(json.dumps(records, indent=1))
    client_for(ctx.settings).log_artifact(ctx.pipeline_run_id, str(path), artifact_path="evaluation")
