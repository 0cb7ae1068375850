"""A data stage as a Prefect task: descriptive re-captioning of a dataset's train videos, written as a new DVC version."""

from __future__ import annotations

import json
import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.recaption import recaption
from components.data.videos_dataset import read_videos, videos_file
from flows.context import DataStageOutcome, PipelineContext
from flows.data_stage import data_stage_params, write_dataset
from flows.stage_run import open_stage_run
from mmops.recipe import RecaptionStageConfig
from registry.data_repo import DatasetVersion

EXAMPLES = 24
"""Re-captioned samples logged to MLflow for a person to read."""


@task(name="recaption", cache_policy=NO_CACHE)
def run_recaption(ctx: PipelineContext, stage: RecaptionStageConfig, source: DatasetVersion) -> DataStageOutcome:
    logger = get_run_logger()
    started = time.perf_counter()
    name = ctx.recipe.dataset_name(stage)
    client, run_id = open_stage_run(ctx, stage.name, data_stage_params(stage, name), source)
    try:
        samples, stats = recaption(read_videos(source.path, "train"))
        report = {"source": {"name": source.name, "md5": source.md5, "git_rev": source.git_rev}, "statistics": stats}
        files = {videos_file(source.path, "train").name: json.dumps(samples), "recaption.json": json.dumps(report, indent=2)}
        written = write_dataset(ctx, stage, source, files, client, run_id)
        metrics = stats | {"recaption_seconds": time.perf_counter() - started}
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        client.log_dict(run_id, [{"short": s["short_caption"], "descriptive": s["caption"]} for s in samples[:EXAMPLES]], "recaption_examples.json")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    logger.info("stage %s: %s %s written (%d videos re-captioned, %.1f -> %.1f words a caption)", stage.name, written.name, written.md5,
                len(samples), stats["caption_words_before"], stats["caption_words_after"])
    return DataStageOutcome(stage.name, run_id, written, metrics["recaption_seconds"], metrics, {})
