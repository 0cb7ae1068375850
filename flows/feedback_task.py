"""A data stage as a Prefect task: DRESS's feedback data, written as a new DVC dataset version.

The stage's model answers the questions of the first train conversations; the
rule-based critic gives feedback on each answer; the dataset written holds the
original train conversations and one feedback sample per question (see
components.inference.feedback.feedback_samples).
"""

from __future__ import annotations

import json
import time
from collections import Counter

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import load_dataset_tokenizer
from components.data.llava_json import load_llava_json
from components.evaluation.feedback_eval import exchange_records
from components.evaluation.llava_eval import eval_items
from components.inference.feedback import answer_with_feedback, feedback_samples
from components.training.stage_data import instruct_file
from flows.context import DataStageOutcome, PipelineContext
from flows.data_stage import data_stage_model, data_stage_params, write_dataset
from flows.progress_log import every_tenth
from flows.stage_run import open_stage_run
from mmops.recipe import FeedbackStageConfig
from registry.data_repo import DatasetVersion

REPORT = "feedback.json"
"""Written beside the feedback conversations: what made them (source version, model, settings) and the statistics."""
EXAMPLES = 24
"""Exchanges logged to MLflow for a person to read."""


@task(name="feedback", cache_policy=NO_CACHE)
def run_feedback(ctx: PipelineContext, stage: FeedbackStageConfig, source: DatasetVersion) -> DataStageOutcome:
    logger = get_run_logger()
    started = time.perf_counter()
    recipe, cfg = ctx.recipe, stage.feedback
    client, run_id = open_stage_run(ctx, stage.name, data_stage_params(stage, recipe.dataset_name(stage), stage.feedback), source)
    try:
        tokenizer = load_dataset_tokenizer(source.path)
        model, parent_models = data_stage_model(ctx, stage, "llava_instruct", tokenizer, client, run_id)
        train = instruct_file(source.path, "train")
        items = eval_items(train, source.path, cfg.conversations)
        logger.info("stage %s (feedback): %s answers %d questions of %d train conversations", stage.name, stage.model, len(items), cfg.conversations)
        with torch.inference_mode():
            exchanges = answer_with_feedback(model, tokenizer, items, recipe.model.vision.image_size, rounds=0,
                                             batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                             progress=every_tenth(logger, stage.name, "answers"))
        root = source.path.resolve()
        samples = feedback_samples(exchanges, lambda item: item.image.resolve().relative_to(root).as_posix(), cfg.rounds)
        correct = [ex.feedback[0].correct for ex in exchanges]
        scores = Counter(ex.feedback[0].score for ex in exchanges)
        stats = {"answered": float(len(exchanges)), "answered_correct": sum(correct) / len(correct),
                 "mean_score": sum(s * n for s, n in scores.items()) / len(exchanges)}
        originals = load_llava_json(train)
        report = {"source": {"name": source.name, "md5": source.md5, "git_rev": source.git_rev}, "model": stage.model,
                  "parent_models": parent_models, "feedback": cfg.model_dump(), "statistics": stats,
                  "scores": {str(k): v for k, v in sorted(scores.items())}, "samples": len(originals) + len(samples)}
        written = write_dataset(ctx, stage, source, {train.name: json.dumps(originals + samples), REPORT: json.dumps(report, indent=2)}, client, run_id)
        seconds = time.perf_counter() - started
        metrics = stats | {"samples_written": float(len(samples)), "feedback_seconds": seconds}
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        client.log_dict(run_id, exchange_records(exchanges[:EXAMPLES]), "feedback_examples.json")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    logger.info("stage %s: %s %s written (%d feedback samples; the model was right on %.3f of them) in %.1fs",
                stage.name, written.name, written.md5, len(samples), stats["answered_correct"], seconds)
    return DataStageOutcome(stage.name, run_id, written, seconds, metrics, parent_models)
