"""The one place model families are assembled from shared blocks and typed configs."""

from __future__ import annotations

from torch import nn

from components.models.blip import BlipModel
from components.models.blip2 import QFormerPretrainModel
from components.models.clip import ClipModel
from components.models.config import (
    LanguageModelConfig,
    MedConfig,
    QFormerConfig,
    TextEncoderConfig,
    VisionConfig,
)
from components.models.connectors import QFormerConnector, build_connector
from components.models.diffusion.autoencoder import VideoAutoencoder
from components.models.diffusion.text_to_video import TextToVideo
from components.models.family import ModelConfig
from components.models.flamingo import FlamingoModel
from components.models.gated_cross_attention import GatedCrossAttentionBlock
from components.models.hf_backbones import HFCausalLM, HFVisionTower, LanguageModel, VisionTower
from components.models.image_boundaries import ImageBoundaries
from components.models.language_model import DecoderLM
from components.models.llava import LlavaModel
from components.models.med import MedTextTransformer
from components.models.ofa import OfaModel
from components.models.perceiver import PerceiverResampler
from components.models.qformer import QFormer
from components.models.resampler import CrossAttentionResampler
from components.models.text_encoder import TextEncoder
from components.models.uni_perceiver import UniPerceiver
from components.models.vision import VisionTransformer
from components.models.visual_expert import visual_experts
from components.models.vq import VqTokenizer

INIT_STD = 0.02


def init_weights(model: nn.Module) -> nn.Module:
    """GPT-2 style init: Linear/Embedding weights ~ N(0, 0.02), biases 0, pad rows 0.
    Pretrained HF towers keep their own weights."""
    pretrained = {id(m) for tower in model.modules() if isinstance(tower, (HFVisionTower, HFCausalLM)) for m in tower.modules()}
    for module in model.modules():
        if id(module) in pretrained:
            continue
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
    return model


def _check_token_id(name: str, token_id: int, vocab_size: int) -> None:
    if not 0 <= token_id < vocab_size:
        raise ValueError(f"{name}={token_id} is outside the vocabulary [0, {vocab_size})")


def vision_tower(cfg: VisionConfig, load_pretrained: bool = True) -> VisionTower:
    """mmops' own ViT, or the pretrained HF tower `cfg.pretrained` names; `load_pretrained=False`
    builds that one from its config alone, for a checkpoint of ours to be loaded over it."""
    return VisionTransformer(cfg) if cfg.pretrained is None else HFVisionTower(cfg, load_pretrained)


def decoder_lm(cfg: LanguageModelConfig, vocab_size: int, load_pretrained: bool = True) -> LanguageModel:
    """mmops' own decoder, or the pretrained HF causal LM `cfg.pretrained` names (see vision_tower)."""
    return DecoderLM(cfg, vocab_size) if cfg.pretrained is None else HFCausalLM(cfg, vocab_size, load_pretrained)


def build_vision(cfg: VisionConfig) -> VisionTransformer:
    return init_weights(VisionTransformer(cfg))


def build_clip(
    vision_cfg: VisionConfig,
    text_cfg: TextEncoderConfig,
    vocab_size: int,
    pad_id: int,
    embed_dim: int,
    load_pretrained: bool = True,
) -> ClipModel:
    _check_token_id("pad_id", pad_id, vocab_size)
    model = ClipModel(vision_tower(vision_cfg, load_pretrained), TextEncoder(text_cfg, vocab_size, pad_id), embed_dim)
    return init_weights(model)


def build_language_model(cfg: LanguageModelConfig, vocab_size: int, load_pretrained: bool = True) -> LanguageModel:
    return init_weights(decoder_lm(cfg, vocab_size, load_pretrained))


def build_connector_for(cfg: ModelConfig, vocab_size: int, pad_token_id: int) -> nn.Module:
    """The recipe's connector between the vision tower and the LM: a projector by name, or one of
    the query-based readers (BLIP-2's Q-Former, Qwen-VL's resampler) built from its own config."""
    vision_dim, lm_dim = cfg.vision.dim, cfg.language_model.dim
    if cfg.connector == "qformer":
        return QFormerConnector(QFormer(cfg.qformer, vision_dim, vocab_size, pad_token_id), lm_dim)
    if cfg.connector == "resampler":
        r = cfg.resampler
        return CrossAttentionResampler(vision_dim, lm_dim, r.num_queries, r.dim, r.heads)
    return build_connector(cfg.connector, vision_dim, lm_dim)


def build_llava(cfg: ModelConfig, vocab_size: int, image_token_id: int, pad_token_id: int, load_pretrained: bool = True) -> LlavaModel:
    """A LLaVA-style model (vision tower -> connector -> decoder LM) as `cfg` describes it;
    `load_pretrained`: whether pretrained HF towers read their weights (see vision_tower)."""
    _check_token_id("image_token_id", image_token_id, vocab_size)
    _check_token_id("pad_token_id", pad_token_id, vocab_size)
    model = init_weights(  # Linear and Embedding only: learned queries keep their own init
        LlavaModel(
            vision=vision_tower(cfg.vision, load_pretrained),
            connector=build_connector_for(cfg, vocab_size, pad_token_id),
            language_model=decoder_lm(cfg.language_model, vocab_size, load_pretrained),
            image_token_id=image_token_id,
            pad_token_id=pad_token_id,
            vision_feature_layer=cfg.vision_feature_layer,
            image_positions=cfg.image_positions,
            anyres_pinpoints=cfg.anyres_pinpoints,
            image_boundaries=ImageBoundaries(cfg.language_model.dim) if cfg.image_boundaries else None,
        )
    )
    if cfg.visual_expert:  # copies of the initialised LM's layers
        model.visual_expert = visual_experts(model.language_model.blocks)
    return model


def build_flamingo(cfg: ModelConfig, vocab_size: int, image_token_id: int, pad_token_id: int, load_pretrained: bool = True) -> FlamingoModel:
    """Vision tower -> Perceiver Resampler -> gated cross-attention before every N-th block of a decoder LM;
    either tower may be a pretrained HF one (see vision_tower)."""
    if cfg.flamingo is None:
        raise ValueError("a Flamingo model needs model.flamingo in the recipe (num_latents, depth, heads, cross_attention_every)")
    _check_token_id("image_token_id", image_token_id, vocab_size)
    _check_token_id("pad_token_id", pad_token_id, vocab_size)
    f, lm = cfg.flamingo, cfg.language_model
    blocks = -(-lm.depth // f.cross_attention_every)
    return init_weights(  # Linear and Embedding only: the latents, time embeddings and zero gates keep their own init
        FlamingoModel(
            vision=vision_tower(cfg.vision, load_pretrained),
            connector=PerceiverResampler(cfg.vision.dim, f.num_latents, f.depth, f.heads, max_frames=f.max_frames),
            language_model=decoder_lm(lm, vocab_size, load_pretrained),
            gated_cross_attention=nn.ModuleList(
                GatedCrossAttentionBlock(lm.dim, lm.heads, lm.mlp_hidden, cfg.vision.dim) for _ in range(blocks)
            ),
            image_token_id=image_token_id,
            pad_token_id=pad_token_id,
            vision_feature_layer=cfg.vision_feature_layer,
            cross_attention_every=f.cross_attention_every,
        )
    )


def build_blip(vision_cfg: VisionConfig, med_cfg: MedConfig, vocab_size: int, pad_id: int, embed_dim: int) -> BlipModel:
    """BLIP's ViT (mmops' own: BLIP trains it) and MED text transformer with their heads."""
    _check_token_id("pad_id", pad_id, vocab_size)
    if vision_cfg.pretrained is not None:
        raise ValueError("BLIP pools and cross-attends to mmops' own vision tower; model.vision.pretrained is not available for it")
    text = MedTextTransformer(med_cfg, vision_cfg.dim, vocab_size, pad_id)
    return init_weights(BlipModel(build_vision(vision_cfg), text, vocab_size, embed_dim))


def build_qformer_pretrain(
    vision_cfg: VisionConfig,
    qformer_cfg: QFormerConfig,
    vocab_size: int,
    pad_id: int,
    bos_id: int,
    embed_dim: int,
    vision_feature_layer: int = -1,
    load_pretrained: bool = True,
) -> QFormerPretrainModel:
    _check_token_id("pad_id", pad_id, vocab_size)
    _check_token_id("bos_id", bos_id, vocab_size)
    qformer = QFormer(qformer_cfg, vision_cfg.dim, vocab_size, pad_id)
    model = QFormerPretrainModel(vision_tower(vision_cfg, load_pretrained), qformer, vocab_size, embed_dim, bos_id, vision_feature_layer)
    return init_weights(model)


def build_uni_perceiver(cfg: ModelConfig, vocab_size: int, pad_id: int) -> UniPerceiver:
    """Uni-Perceiver: modality tokenizers in front of one shared encoder (mmops' own, trained from scratch)."""
    if cfg.uni_perceiver is None:
        raise ValueError("a Uni-Perceiver model needs model.uni_perceiver in the recipe (dim, depth, heads, max_text_len, ...)")
    if cfg.vision.pretrained is not None:
        raise ValueError("Uni-Perceiver tokenizes images with its own patch embedding; model.vision.pretrained is not available for it")
    _check_token_id("pad_id", pad_id, vocab_size)
    return init_weights(UniPerceiver(cfg.uni_perceiver, cfg.vision, vocab_size, pad_id, cfg.clip_embed_dim))


def build_ofa(cfg: ModelConfig, vocab_size: int, image_id: int, pad_id: int, bos_id: int, eos_id: int) -> OfaModel:
    """OFA: the vision tower and one encoder-decoder over the tokenizer's vocabulary and the image codes (mmops' own, from scratch)."""
    if cfg.ofa is None:
        raise ValueError("an OFA model needs model.ofa in the recipe (dim, encoder_depth, decoder_depth, heads, ...)")
    if cfg.vision.pretrained is not None:
        raise ValueError("OFA trains its image encoder with the rest; model.vision.pretrained is not available for it")
    for name, value in (("image_id", image_id), ("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
        _check_token_id(name, value, vocab_size)
    return init_weights(OfaModel(cfg.ofa, cfg.vision, cfg.vq, vocab_size, image_id, pad_id, bos_id, eos_id))


def build_image_tokenizer(cfg: ModelConfig) -> VqTokenizer:
    if cfg.vq is None:
        raise ValueError("an image tokenizer needs model.vq in the recipe (codebook_size, code_dim, hidden, downsample)")
    return init_weights(VqTokenizer(cfg.vq))


def build_video_autoencoder(cfg: ModelConfig) -> VideoAutoencoder:
    if cfg.video_autoencoder is None:
        raise ValueError("the video compression network needs model.video_autoencoder (latent_channels, hidden, downsample, ...) in the recipe")
    return VideoAutoencoder(cfg.video_autoencoder)


def build_text_to_video(cfg: ModelConfig, vocab_size: int, pad_id: int) -> TextToVideo:
    """A CLIP text tower (model.text_encoder, clip_embed_dim: what a registered CLIP gives it), the video compression
    network and the diffusion transformer. Only the text tower takes the GPT-2 init: the transformer's zeros
    (adaLN-Zero) and the convolutions' own init stay."""
    if cfg.diffusion is None:
        raise ValueError("the diffusion objective needs model.diffusion (dit, schedule, prediction, ...) in the recipe")
    _check_token_id("pad_id", pad_id, vocab_size)
    text = init_weights(TextEncoder(cfg.text_encoder, vocab_size, pad_id))
    projection = init_weights(nn.Linear(cfg.text_encoder.dim, cfg.clip_embed_dim, bias=False))
    return TextToVideo(cfg.diffusion, build_video_autoencoder(cfg), text, projection)
