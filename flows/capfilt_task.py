"""A data stage as a Prefect task: CapFilt over a dataset's train captions, written as a new DVC dataset version."""

from __future__ import annotations

import json
import time

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import load_dataset_tokenizer
from components.data.llava_json import load_llava_json
from components.inference.capfilt import capfilt
from components.training.stage_data import captions_file
from flows.context import DataStageOutcome, PipelineContext
from flows.data_stage import data_stage_model, data_stage_params, write_dataset
from flows.progress_log import every_tenth
from flows.stage_run import open_stage_run
from mmops.errors import PipelineError
from mmops.recipe import CapFiltStageConfig
from registry.data_repo import DatasetVersion

REPORT = "capfilt.json"
"""Written beside the bootstrapped captions: what made them (source version, model, settings) and the statistics."""
EXAMPLES = 24
"""Synthetic captions kept, logged to MLflow for a person to read."""


@task(name="capfilt", cache_policy=NO_CACHE)
def run_capfilt(ctx: PipelineContext, stage: CapFiltStageConfig, source: DatasetVersion) -> DataStageOutcome:
    logger = get_run_logger()
    started = time.perf_counter()
    recipe = ctx.recipe
    name = recipe.dataset_name(stage)
    client, run_id = open_stage_run(ctx, stage.name, data_stage_params(stage, name, stage.capfilt), source)
    try:
        tokenizer = load_dataset_tokenizer(source.path)
        model, parent_models = data_stage_model(ctx, stage, "blip_pretrain", tokenizer, client, run_id)
        train_captions = captions_file(source.path, "train")
        samples = load_llava_json(train_captions)
        logger.info("stage %s (capfilt): captioning and filtering %d train images with %s", stage.name, len(samples), stage.model)
        torch.manual_seed(stage.capfilt.seed)
        kept, stats = capfilt(model, tokenizer, samples, source.path, recipe.model.vision.image_size, stage.capfilt,
                              progress=every_tenth(logger, stage.name, "images"))
        if not kept:  # before anything is written: an empty dataset version would fail every stage that reads it
            raise PipelineError(
                f"{ctx.loaded.path}: stage {stage.name!r} kept no caption of {len(samples)} images: the filter ({stage.model}) never "
                f"reached capfilt.threshold {stage.capfilt.threshold}; lower it (allowed: 0 to 1) or train {stage.model} longer"
            )
        report = {"source": {"name": source.name, "md5": source.md5, "git_rev": source.git_rev}, "model": stage.model,
                  "parent_models": parent_models, "capfilt": stage.capfilt.model_dump(), "statistics": stats, "samples": len(kept)}
        written = write_dataset(ctx, stage, source, {train_captions.name: json.dumps(kept), REPORT: json.dumps(report, indent=2)}, client, run_id)
        seconds = time.perf_counter() - started
        metrics = stats | {"samples_written": float(len(kept)), "capfilt_seconds": seconds}
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        client.log_dict(run_id, [s for s in kept if s.get("caption_synthetic")][:EXAMPLES], "capfilt_examples.json")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    logger.info(
        "stage %s: %s %s written (%d samples; originals kept %.3f, synthetic kept %.3f%s) in %.1fs", stage.name, written.name,
        written.md5, len(kept), stats["kept_original"], stats["kept_synthetic"],
        f", noise removed {stats['noise_removed']:.3f}, clean kept {stats['clean_kept']:.3f}" if "noise_removed" in stats else "", seconds,
    )
    return DataStageOutcome(stage.name, run_id, written, seconds, metrics, parent_models)
