"""The model each objective trains, assembled by the family builders.

Every stage model exposes its parts as top-level submodules, so that
checkpoints, freeze plans and parent initialisation all speak of the same
names: `vision`, `text`, `connector`, `language_model`, ...
"""

from __future__ import annotations

from torch import nn

from components.data.tokenizer import TextTokenizer
from components.models.builders import (
    build_blip,
    build_clip,
    build_flamingo,
    build_language_model,
    build_image_tokenizer,
    build_llava,
    build_ofa,
    build_qformer_pretrain,
    build_text_to_video,
    build_uni_perceiver,
    build_video_autoencoder,
)
from components.models.family import ModelConfig
from components.training.objectives import FLAMINGO_OBJECTIVES, LLAVA_OBJECTIVES


class ImageTokenizerOnly(nn.Module):
    """The VQ tokenizer's own stage: weights saved as `image_tokenizer.*`, what OFA's init copies."""

    def __init__(self, image_tokenizer: nn.Module):
        super().__init__()
        self.image_tokenizer = image_tokenizer


class AutoencoderOnly(nn.Module):
    """The video compression network's own stage: weights saved as `autoencoder.*`, what the diffusion stage's init copies."""

    def __init__(self, autoencoder: nn.Module):
        super().__init__()
        self.autoencoder = autoencoder


class LanguageModelOnly(nn.Module):
    """Text-only pretraining wraps the LM so its weights are saved as `language_model.*`."""

    def __init__(self, language_model: nn.Module):
        super().__init__()
        self.language_model = language_model


def build_stage_model(objective: str, cfg: ModelConfig, tokenizer: TextTokenizer, load_pretrained: bool = True) -> nn.Module:
    """`load_pretrained`: whether pretrained HF towers read their weights (a stage's start) or are
    built from their configs alone (evaluation and serving, which load a checkpoint of ours over them)."""
    if objective == "contrastive":
        return build_clip(cfg.vision, cfg.text_encoder, tokenizer.vocab_size, tokenizer.pad_id, cfg.clip_embed_dim, load_pretrained)
    if objective == "language_modeling":
        return LanguageModelOnly(build_language_model(cfg.language_model, tokenizer.vocab_size, load_pretrained))
    if objective in LLAVA_OBJECTIVES:
        return build_llava(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id, load_pretrained)
    if objective in FLAMINGO_OBJECTIVES:
        return build_flamingo(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id, load_pretrained)
    if objective == "blip_pretrain":
        if cfg.blip is None:
            raise ValueError("the blip_pretrain objective needs model.blip in the recipe")
        return build_blip(cfg.vision, cfg.blip, tokenizer.vocab_size, tokenizer.pad_id, cfg.clip_embed_dim)
    if objective == "qformer_pretrain":
        if cfg.qformer is None:
            raise ValueError("the qformer_pretrain objective needs model.qformer in the recipe")
        return build_qformer_pretrain(
            cfg.vision, cfg.qformer, tokenizer.vocab_size, tokenizer.pad_id, tokenizer.bos_id, cfg.clip_embed_dim,
            load_pretrained=load_pretrained,
        )
    if objective == "uni_perceiver":
        return build_uni_perceiver(cfg, tokenizer.vocab_size, tokenizer.pad_id)
    if objective == "vq_tokenizer":
        return ImageTokenizerOnly(build_image_tokenizer(cfg))
    if objective == "ofa_instruct":
        return build_ofa(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
    if objective == "video_autoencoder":
        return AutoencoderOnly(build_video_autoencoder(cfg))
    if objective == "diffusion":
        return build_text_to_video(cfg, tokenizer.vocab_size, tokenizer.pad_id)
    raise ValueError(
        f"unknown objective {objective!r} (allowed: contrastive, language_modeling, llava_pretrain, llava_instruct, llava_multitask, llava_interleaved, flamingo_interleaved, qformer_pretrain, blip_pretrain, uni_perceiver, vq_tokenizer, ofa_instruct, video_autoencoder, diffusion)"
    )
