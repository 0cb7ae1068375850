"""One loss function per stage objective: (model, batch) -> (loss, metrics to log).

The stage's model is what `build_stage_model` makes for that objective;
these functions only call its forward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from components.models.language_model import position_ids_from_mask
from components.models.llava import LossWeighting
from components.models.ofa import IGNORE_INDEX
from components.training.blip_losses import blip_losses
from components.training.diffusion_losses import denoising_loss, encode_videos
from components.training.losses import clip_loss, next_token_loss, region_word_loss, unicl_loss
from components.training.qformer_losses import qformer_losses

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def contrastive(model: nn.Module, batch: Batch, region_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CLIP's loss, or UniCL's when the batch labels its pairs; with region_weight > 0 (and a batch
    with region words) plus that much of the region-word alignment of the patch tokens."""
    if region_weight > 0 and "region_positive" not in batch:
        raise ValueError("region_weight > 0 needs batches with region words (an ImageTextDataset built with region_grid)")
    if region_weight > 0:
        image_emb, patch_emb = model.encode_image_and_patches(batch["pixel_values"])
        text_emb, scale = model.encode_text(batch["text_ids"], batch["text_mask"]), model.scale()
    else:
        image_emb, text_emb, scale = model(batch["pixel_values"], batch["text_ids"], batch["text_mask"])
    negative_emb = model.encode_text(batch["negative_ids"], batch["negative_mask"]) if "negative_ids" in batch else None
    if "pair_labels" in batch:  # UniCL: pairs that share a label are positives for one another
        loss = unicl_loss(image_emb, text_emb, scale, batch["pair_labels"], negative_emb)
    else:
        loss = clip_loss(image_emb, text_emb, scale, negative_emb)
    metrics = {"logit_scale": scale.detach()}
    if region_weight > 0:
        described = batch["region_positive"].any(-1)  # (B, N): tokens that belong to a region
        region = region_word_loss(
            patch_emb[described], model.encode_words(batch["word_ids"], batch["word_mask"]), batch["region_positive"][described], scale
        )
        metrics |= {"clip_loss": loss.detach(), "region_word_loss": region.detach()}
        loss = loss + region_weight * region
    with torch.no_grad():
        positive = (image_emb * text_emb).sum(-1)  # (N,)
        hits = (image_emb @ text_emb.t()).argmax(dim=1) == torch.arange(len(image_emb), device=image_emb.device)
        metrics["batch_i2t_acc"] = hits.float().mean()
        if negative_emb is not None:  # does each image prefer its caption to the one that is wrong in one detail?
            metrics["hard_negative_acc"] = (positive > (image_emb * negative_emb).sum(-1)).float().mean()
    return loss, metrics


def language_modeling(
    model: nn.Module, batch: Batch, loss_weighting: LossWeighting = "token"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    lm = model.language_model
    mask = batch["attention_mask"]
    logits, _ = lm(lm.embed(batch["input_ids"]), mask, position_ids_from_mask(mask))
    return next_token_loss(logits, batch["labels"], loss_weighting), {}


def llava(model: nn.Module, batch: Batch, loss_weighting: LossWeighting = "token") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
        has_image=batch["has_image"],
        labels=batch["labels"],
        loss_weighting=loss_weighting,
        image_sizes=batch.get("image_sizes"),
    )
    return out["loss"], {}


def blip_pretrain(model: nn.Module, batch: Batch, caption_negatives: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """BLIP on caption pairs: ITC + ITM (negatives drawn from ITC) + LM; with `caption_negatives`, the captions' one-detail
    negatives join ITC's texts (NegCLIP)."""
    if caption_negatives and "negative_ids" not in batch:
        raise ValueError("caption_negatives needs captions with hard negatives (the Shapes captions' one-detail negatives)")
    negatives = (batch["negative_ids"], batch["negative_mask"]) if caption_negatives else (None, None)
    losses = blip_losses(model, batch["pixel_values"], batch["text_ids"], batch["text_mask"], *negatives)
    return losses["loss"], {k: v.detach() for k, v in losses.items() if k != "loss"}


def qformer_pretrain(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """BLIP-2 stage 1 on caption pairs: ITC + ITM + ITG (hard-negative captions in the batch are not used)."""
    losses = qformer_losses(model, batch["pixel_values"], batch["text_ids"], batch["text_mask"])
    return losses["loss"], {k: v.detach() for k, v in losses.items() if k != "loss"}


def vq_tokenizer(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The VQ-VAE's reconstruction, codebook and commitment losses on the batch's images."""
    _, losses = model.image_tokenizer(batch["pixel_values"])
    return losses["loss"], {k: v for k, v in losses.items() if k != "loss"}


def video_autoencoder(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The video compression network's reconstruction and KL losses on a batch of videos of one size."""
    losses = model.autoencoder.losses(batch["videos"])
    return losses["loss"], {k: v.detach() for k, v in losses.items() if k != "loss"}


def diffusion(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The diffusion transformer's denoising loss on the frozen autoencoder's latents of the batch's videos (encoded
    before training, see encoded_videos, or here)."""
    latents = batch["latents"] if "latents" in batch else encode_videos(model, batch["videos"])
    return denoising_loss(model, latents, batch["text_ids"], batch["text_mask"]), {}


def ofa_instruct(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """OFA's seq2seq loss over every instruction's answer; infilling items (batch["infill"]) get their image's middle
    masked and the codes of that middle, then eos, as their answer."""
    pixels, labels = batch["pixel_values"], batch["labels"]
    infill = batch.get("infill")
    metrics: dict[str, torch.Tensor] = {}
    if infill is not None and bool(infill.any()):
        masked, codes = model.infill_batch(pixels[infill])
        pixels, labels = pixels.clone(), labels.clone()
        pixels[infill] = masked
        rows = torch.full_like(labels[infill], IGNORE_INDEX)
        rows[:, : codes.shape[1]] = codes
        rows[:, codes.shape[1]] = model.eos_id
        labels[infill] = rows
    out = model(batch["input_ids"], batch["attention_mask"], pixels, batch["has_image"], labels)
    if infill is not None and bool(infill.any()):
        with torch.no_grad():
            rows, predicted = labels[infill], out["logits"][infill].argmax(-1)
            is_code = rows >= model.codes_offset
            metrics["infill_code_accuracy"] = (predicted[is_code] == rows[is_code]).float().mean()
    return out["loss"], metrics


# The objectives that train a LLaVA-style model (tower -> connector -> LM) on conversations:
# captions (pretrain), instructions (instruct), both mixed (multitask: Qwen-VL's stage 2, CogVLM's),
# or several of them to a sequence, each image spliced where it stands (interleaved: KOSMOS-1's documents).
LLAVA_OBJECTIVES = frozenset({"llava_pretrain", "llava_instruct", "llava_multitask", "llava_interleaved"})
# Those whose samples are one conversation about one image each (which text-only items and length grouping fit).
ONE_IMAGE_OBJECTIVES = LLAVA_OBJECTIVES - {"llava_interleaved"}
# Flamingo's: interleaved sequences of images and text, read through gated cross-attention.
FLAMINGO_OBJECTIVES = frozenset({"flamingo_interleaved"})
# OFA's: one encoder-decoder answering instructions (and the image tokenizer whose codes it writes).
OFA_OBJECTIVES = frozenset({"ofa_instruct"})
# The objectives whose sequences hold several images.
INTERLEAVED_OBJECTIVES = frozenset({"llava_interleaved"}) | FLAMINGO_OBJECTIVES
# The objectives whose loss is over target tokens, and so can weight them per answer.
TOKEN_OBJECTIVES = frozenset({"language_modeling"}) | LLAVA_OBJECTIVES | FLAMINGO_OBJECTIVES
# The objectives whose model answers questions about images (evaluated by VQA and grounding).
ANSWERING_OBJECTIVES = LLAVA_OBJECTIVES | FLAMINGO_OBJECTIVES | OFA_OBJECTIVES
# The objectives whose model embeds images and texts in one space (evaluated by zero-shot and retrieval;
# BLIP's also matches and captions; Uni-Perceiver's one shared encoder also predicts words, see
# training.uniperceiver_tasks, whose sampler stage_module builds in place of a fixed loss function).
CONTRASTIVE_OBJECTIVES = frozenset({"contrastive", "blip_pretrain", "uni_perceiver"})
# The objectives whose model generates videos (and images, one-frame videos) from captions, and the
# autoencoder stage before them.
VIDEO_OBJECTIVES = frozenset({"video_autoencoder", "diffusion"})
GENERATIVE_OBJECTIVES = frozenset({"diffusion"})
# The objectives a pipeline can evaluate, register and serve: what an output stage may train.
OUTPUT_OBJECTIVES = ANSWERING_OBJECTIVES | CONTRASTIVE_OBJECTIVES | GENERATIVE_OBJECTIVES

OBJECTIVES: dict[str, LossFn] = {
    "contrastive": contrastive,
    "language_modeling": language_modeling,
    "llava_pretrain": llava,
    "llava_instruct": llava,
    "llava_multitask": llava,
    "llava_interleaved": llava,
    "flamingo_interleaved": llava,  # the same call: Flamingo's forward takes the batch as LLaVA's does
    "qformer_pretrain": qformer_pretrain,
    "blip_pretrain": blip_pretrain,
    "vq_tokenizer": vq_tokenizer,
    "ofa_instruct": ofa_instruct,
    "video_autoencoder": video_autoencoder,
    "diffusion": diffusion,
}
