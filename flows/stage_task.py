"""One training stage as a Prefect task: a nested MLflow run around components' train_stage."""

from __future__ import annotations

import json
import time

import torch
from lightning.pytorch.loggers import MLFlowLogger
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from components.data.build import load_dataset_tokenizer
from components.data.coordinate_bins import bins_of
from components.data.label_prompts import LabelPrompts
from components.data.location_tokens import required_grid
from components.data.tokenizer import TextTokenizer
from components.data.video_clips import VideoCaptionDataset
from components.evaluation.linear_probe import attribute_probes
from components.evaluation.zero_shot import zero_shot_accuracy
from components.models.diffusion.autoencoder import VideoAutoencoder
from components.models.ofa import middle_codes
from components.training.checkpoints import init_part, load_weights
from components.training.diffusion_losses import calibrate_latent_scale
from components.training.encoded_videos import EncodedVideos
from components.training.stage_data import build_dataloader, build_stage_dataset, captions_file
from components.training.stage_models import build_stage_model
from components.training.train_stage import train_stage
from components.training.uniperceiver_tasks import class_prompts
from flows.context import PipelineContext, StageOutcome
from flows.interrupted_run import finished_outcome, save_outcome
from flows.progress_log import every_tenth
from flows.stage_run import open_stage_run
from mmops.errors import PipelineError, RegistryError
from mmops.recipe import StageConfig
from registry.data_repo import DatasetVersion
from registry.model_versions import ResolvedModel, resolve_model


def stage_params(stage: StageConfig) -> dict[str, str]:
    """Every field of the stage but its name, as MLflow params: the optimizer's flattened to
    `optimizer.<field>`, lists joined by commas, mappings as JSON."""

    def text(value) -> str:
        if isinstance(value, list):
            return ",".join(map(str, value))
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        return str(value)

    fields = stage.model_dump(exclude={"name"})
    optimizer = fields.pop("optimizer")
    return {key: text(value) for key, value in fields.items()} | {f"optimizer.{key}": text(value) for key, value in optimizer.items()}


def parent_model(ctx: PipelineContext, source: str, tokenizer: TextTokenizer) -> ResolvedModel:
    """Download a registered version a stage starts from, refusing one trained with another
    tokenizer: its embedding rows would be read as different words."""
    parent = resolve_model(ctx.settings, source)
    if parent.tokenizer is None or TextTokenizer.load(parent.tokenizer).vocabulary() != tokenizer.vocabulary():
        raise RegistryError(
            f"{ctx.loaded.path}: init source {source} ({parent.version}) was trained with a different tokenizer "
            f"than this recipe's dataset; start from a version trained on the same data section (data.shapes, data.tokenizer)"
        )
    return parent


def parent_model_tag(source: str) -> str:
    """The MLflow tag naming the version a models:/ source resolved to; tag keys allow no '@', so
    models:/NAME@ALIAS is keyed NAME:ALIAS."""
    return f"mmops.parent_model.{source.removeprefix('models:/').replace('@', ':')}"


@task(name="train-stage", cache_policy=NO_CACHE)
def run_stage(ctx: PipelineContext, stage: StageConfig, dataset: DatasetVersion) -> StageOutcome:
    logger = get_run_logger()
    if ctx.resume and (finished := finished_outcome(ctx.stage_weights(stage.name))) is not None:
        logger.info("stage %s finished before the run stopped: its weights and MLflow run %s are reused", stage.name, finished.run_id)
        return finished
    require_startable_here(ctx, stage)
    return train_one_stage(ctx, stage, dataset, logger)


def encode_once(stage: str, videos: VideoCaptionDataset, autoencoder: VideoAutoencoder, logger) -> EncodedVideos:
    """The stage's videos as the frozen autoencoder's latents, encoded now rather than at every step."""
    start = time.perf_counter()
    encoded = EncodedVideos(videos, autoencoder, progress=every_tenth(logger, stage, "videos encoded"))
    logger.info("stage %s: %d videos encoded once to latents (%.1f MB) in %.0f s", stage, len(encoded), encoded.nbytes() / 2**20,
                time.perf_counter() - start)
    return encoded


def require_startable_here(ctx: PipelineContext, stage: StageConfig) -> None:
    """A pipeline starts a stage's processes itself only with ddp_spawn; other strategies over several processes
    need a launcher per rank, and Lightning would otherwise start the whole `mmops run` again in each."""
    distributed = ctx.recipe.distributed
    if distributed.processes > 1 and distributed.strategy != "ddp_spawn":
        recipe = ctx.loaded.path
        raise PipelineError(
            f"stage {stage.name}: strategy {distributed.strategy} over {distributed.processes} processes ({distributed.num_nodes} "
            f"node(s)) needs a launcher to start them. The stages before it are kept: run `mmops train-stage {recipe} {stage.name}` "
            f"on every rank (torchrun, srun, a Kubernetes job; see the README), then `mmops run {recipe} --resume`. On one machine, "
            "strategy ddp_spawn lets the pipeline start them."
        )


def train_one_stage(ctx: PipelineContext, stage: StageConfig, dataset: DatasetVersion, logger, tracked: bool = True) -> StageOutcome | None:
    """Train the stage in this process, from its init sources, and record it: a nested MLflow run, its weights and
    `outcome.json` beside them. Untracked (a launcher's ranks but 0), the process trains its share and records
    nothing; rank 0 writes for all."""
    recipe = ctx.recipe
    distributed = {f"distributed.{key}": str(value) for key, value in recipe.distributed.model_dump().items()}
    client, run_id = open_stage_run(ctx, stage.name, stage_params(stage) | distributed, dataset) if tracked else (None, None)
    try:
        torch.manual_seed(stage.seed)  # the model's initial weights are a function of the recipe
        tokenizer = load_dataset_tokenizer(dataset.path)
        model = build_stage_model(stage.objective, recipe.model, tokenizer)
        parents = {source: parent_model(ctx, source, tokenizer) for source in stage.parent_models}
        parent_models = {source: parent.version for source, parent in parents.items()}
        for part, source in stage.init.items():
            weights_path = parents[source].weights if source in parents else ctx.stage_weights(source)
            copied = init_part(model, part, load_weights(weights_path), source)
            logger.info("stage %s: %s <- %s (%d tensors)", stage.name, part, source, copied)
        for source, resolved in parent_models.items():
            if tracked:
                client.set_tag(run_id, parent_model_tag(source), resolved)

        image_size = recipe.model.vision.image_size
        flamingo = recipe.model.flamingo
        max_images = stage.max_images if stage.objective == "llava_interleaved" else flamingo.max_images if flamingo else 1
        classifies = stage.objective == "uni_perceiver" and stage.tasks.get("classification", 0) > 0
        dataset_obj = build_stage_dataset(
            stage.objective, dataset.path, tokenizer, image_size, stage.max_len, pinpoints=recipe.model.anyres_pinpoints,
            max_images=max_images, seed=stage.seed,
            region_grid=recipe.model.vision.grid if stage.region_weight > 0 else None, text_corpus=stage.text_corpus,
            label_prompts=LabelPrompts(stage.label_prompts, tuple(recipe.evaluation.zero_shot_templates)) if stage.label_prompts > 0 else None,
            text_only_mix=stage.text_only_mix, location_grid=required_grid(tokenizer.vocabulary()) if stage.location_tokens else None,
            corpus=stage.corpus, ofa_tasks=dict(stage.tasks) or None,
            coordinate_bins=bins_of(tokenizer.vocabulary()) if stage.objective == "ofa_instruct" else None,
            infill_codes=middle_codes(image_size, recipe.model.vq), object_classes=classifies,
        )
        loader = build_dataloader(dataset_obj, stage.batch_size, tokenizer.pad_id, stage.seed, group_by_length=stage.group_by_length)
        if stage.objective == "diffusion":  # the frozen autoencoder's latents scaled to unit variance before the transformer learns them
            logger.info("stage %s: latent scale %.4f", stage.name, calibrate_latent_scale(model, loader))
            if "autoencoder" not in stage.trainable:
                dataset_obj = encode_once(stage.name, dataset_obj, model.autoencoder, logger)
                loader = build_dataloader(dataset_obj, stage.batch_size, tokenizer.pad_id, stage.seed)
        logger.info("stage %s (%s): %d steps, batch %d, training %s", stage.name, stage.objective, stage.steps, stage.batch_size, stage.trainable)
        result = train_stage(
            model,
            stage.objective,
            stage.trainable,
            stage.optimizer,
            stage.steps,
            loader,
            ctx.stage_weights(stage.name),
            logger=MLFlowLogger(tracking_uri=ctx.settings.tracking_uri, run_id=run_id) if tracked else None,
            log_every=stage.log_every,
            loss_weighting=stage.loss_weighting,
            region_weight=stage.region_weight,
            caption_negatives=stage.caption_negatives,
            tasks=(dict(stage.tasks) or None) if stage.objective == "uni_perceiver" else None,
            seed=stage.seed,
            class_prompts=class_prompts(tokenizer, dataset_obj.classes, recipe.evaluation.zero_shot_templates, model.max_text_len) if classifies else None,
            distributed=recipe.distributed,
            checkpoint_every=stage.checkpoint_every,
            resume=ctx.resume,
        )
        if not tracked:
            return None
        if result.resumed_from is not None:
            logger.info("stage %s resumed from %s", stage.name, result.resumed_from)
            client.set_tag(run_id, "mmops.resumed_from_checkpoint", result.resumed_from.name)
        metrics = {"final_loss": result.final_loss, "train_seconds": result.seconds,
                   "trainable_params": float(result.freeze.trainable_count), "frozen_params": float(result.freeze.frozen_count)}
        if stage.objective == "contrastive" and stage.corpus == "scenes":  # a page tower's scenes are not its concern
            metrics |= zero_shot_accuracy(
                model, tokenizer, captions_file(dataset.path, "test"), dataset.path, image_size, recipe.evaluation.zero_shot_templates
            )
            # what a LLaVA stage will be able to read from the frozen tower's patch tokens
            metrics |= attribute_probes(model.vision, captions_file(dataset.path, "train"), dataset.path, recipe.model.vision_feature_layer)
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        client.log_artifact(run_id, str(result.weights), artifact_path="weights")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        if tracked:
            client.set_terminated(run_id, "FAILED")
        raise
    logger.info("stage %s done in %.1fs, loss %.4f", stage.name, result.seconds, result.final_loss)
    outcome = StageOutcome(stage.name, run_id, result.weights, result.seconds, result.final_loss, metrics, parent_models)
    save_outcome(outcome)
    return outcome
