"""A text-to-video model's evaluation in a pipeline: held-out denoising loss, the judged samples per guidance
scale, and the sample grid logged for people to look at (evaluation/samples.gif and samples.png)."""

from __future__ import annotations

from components.data.tokenizer import TextTokenizer
from components.data.video_clips import VideoCaptionDataset
from components.evaluation.generation_eval import generation_metrics
from components.evaluation.metric_names import scale_tag
from components.evaluation.previews import save_previews
from components.models.diffusion.text_to_video import TextToVideo
from components.training.diffusion_losses import held_out_losses
from components.training.stage_data import build_dataloader
from flows.context import PipelineContext
from registry.data_repo import DatasetVersion
from registry.tracking import client_for


def evaluate_generation(ctx: PipelineContext, dataset: DatasetVersion, model: TextToVideo, tokenizer: TextTokenizer, logger) -> tuple[dict[str, float], list[dict]]:
    recipe, cfg = ctx.recipe, ctx.recipe.evaluation
    generation, seed = cfg.generation, recipe.final_stage.seed

    def progress(what: str, done: int, total: int) -> None:
        logger.info("evaluate: %s %d/%d", what, done, total)

    test = VideoCaptionDataset(dataset.path, "test", tokenizer, model.max_text_len)
    metrics = held_out_losses(model, build_dataloader(test, cfg.batch_size, tokenizer.pad_id, seed, shuffle=False), seed)
    scores, samples, records = generation_metrics(  # not in inference mode: the judge trains first
        model, tokenizer, dataset.path, tuple(generation.guidance_scales), generation.sampling, cfg.limit or 10**9,
        generation.judge_steps, cfg.batch_size, seed, generation.previews, progress, generation.expand_prompts,
    )
    metrics |= scores
    if generation.previews:
        rows = [("real", samples.real)] + [(f"guidance {s:g}", samples.videos[s]) for s in generation.guidance_scales]
        gif, png = ctx.run_dir / "samples.gif", ctx.run_dir / "samples.png"
        save_previews(rows, gif, png)
        client = client_for(ctx.settings)
        for path in (gif, png):
            client.log_artifact(ctx.pipeline_run_id, str(path), artifact_path="evaluation")
        (ctx.run_dir / "sample_captions.txt").write_text("\n".join(samples.captions) + "\n")
        client.log_artifact(ctx.pipeline_run_id, str(ctx.run_dir / "sample_captions.txt"), artifact_path="evaluation")
    logger.info("generation: real %.3f; %s", metrics["real_accuracy"],
                ", ".join(f"{s:g}: {metrics['generation_accuracy_' + scale_tag(s)]:.3f}" for s in generation.guidance_scales))
    return metrics, records
