"""Typed architecture knobs for every tower.

Architecture differences are fields here, not subclasses (litgpt-style).
Sizes that come from data (vocab size, special token ids) are not config:
the tokenizer owns them and the builders take them as arguments.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from components.models.diffusion.schedule import NoiseScheduleConfig
from components.models.hf_config import check_pretrained, with_pretrained_fields

ConnectorName = Literal["linear", "mlp2x_gelu", "swiglu_adapter", "qformer", "resampler"]


def _check_heads_divide_dim(name: str, dim: int, heads: int) -> None:
    if dim % heads != 0:
        raise ValueError(
            f"{name}: heads={heads} must divide dim={dim} "
            f"(each head gets dim / heads channels); pick heads from the divisors of {dim}"
        )


class VisionConfig(BaseModel):
    """ViT image tower: square images cut into square patches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: PositiveInt = 64
    patch_size: PositiveInt = 8
    dim: PositiveInt = 128
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    position_embedding: Literal["learned", "sincos2d"] = "learned"
    """`learned`: a trained vector per position (ViT, CLIP); `sincos2d`: fixed sines and cosines
    of each patch's column and row (MAE), which no training can wash out of a frozen tower."""
    pool: Literal["cls", "mean"] = "cls"
    """How the contrastive stage pools the tower into one image vector: `cls`, the class token
    (CLIP); `mean`, the average of the patch tokens (global average pooling, as open_clip's
    `pool_type='avg'`), which makes every patch token carry what the caption says about its part
    of the image: the tokens a LLaVA connector reads, not only the class token."""
    stem: Literal["patch", "conv"] = "patch"
    """`patch`: one strided convolution per patch (ViT); `conv`: two stride-2 3x3 convolutions
    before the patch projection (early convolutions see small shapes better)."""
    pixel_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pixel_std: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = (1.0, 1.0, 1.0)
    """Per-channel statistics of the training images (pixels in [-1, 1]), subtracted and divided
    inside the tower as CLIP's preprocessing does: on mostly-dark scenes the shapes then stand out
    from the background instead of being a small change to a large constant input."""
    pretrained: Path | None = None
    """A local HF transformers directory (config.json + *.safetensors) of a CLIP or SigLIP vision
    tower to use instead of mmops' own ViT. Its config.json (and preprocessor_config.json) then set
    the sizes and pixel statistics above; position_embedding, pool and stem do not apply."""

    @model_validator(mode="before")
    @classmethod
    def _fields_from_pretrained(cls, data: Any) -> Any:
        return with_pretrained_fields(data, "vision", {name: field.default for name, field in cls.model_fields.items()})

    @field_validator("pretrained")
    @classmethod
    def _pretrained_tower(cls, value: Path | None) -> Path | None:
        return None if value is None else check_pretrained(value, "vision")

    @model_validator(mode="after")
    def _check_shapes(self) -> VisionConfig:
        if self.pretrained is not None:  # its own sizes (SigLIP's 384-pixel images hold 27 whole 14-pixel patches)
            return self
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"VisionConfig: patch_size={self.patch_size} must divide "
                f"image_size={self.image_size} so the patches tile the image exactly"
            )
        if self.stem == "conv" and self.patch_size % 4 != 0:
            raise ValueError(f"VisionConfig: the conv stem downsamples by 4, so patch_size={self.patch_size} must be a multiple of 4")
        _check_heads_divide_dim("VisionConfig", self.dim, self.heads)
        if self.position_embedding == "sincos2d" and self.dim % 4 != 0:
            raise ValueError(f"VisionConfig: sincos2d positions need dim divisible by 4; got dim={self.dim}")
        return self

    @property
    def grid(self) -> int:
        """Patches per side of the (square) image."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class TextEncoderConfig(BaseModel):
    """CLIP text tower: bidirectional transformer over at most max_len tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: PositiveInt = 128
    depth: PositiveInt = 2
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    max_len: PositiveInt = 64

    @model_validator(mode="after")
    def _check_shapes(self) -> TextEncoderConfig:
        _check_heads_divide_dim("TextEncoderConfig", self.dim, self.heads)
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class LanguageModelConfig(BaseModel):
    """LLaMA-style decoder: RMSNorm, SwiGLU, rotary positions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: PositiveInt = 128
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    mlp_hidden: PositiveInt = 344
    max_seq_len: PositiveInt = 512
    rope_theta: PositiveFloat = 10000.0
    pretrained: Path | None = None
    """A local HF transformers directory (config.json + *.safetensors) of a causal LM (Llama, Mistral,
    Qwen2, Qwen3) to use instead of mmops' own decoder. Its config.json then sets the sizes above;
    max_seq_len may be set lower than the model's own limit."""

    @model_validator(mode="before")
    @classmethod
    def _fields_from_pretrained(cls, data: Any) -> Any:
        return with_pretrained_fields(data, "language_model", {name: field.default for name, field in cls.model_fields.items()})

    @field_validator("pretrained")
    @classmethod
    def _pretrained_lm(cls, value: Path | None) -> Path | None:
        return None if value is None else check_pretrained(value, "language_model")

    @model_validator(mode="after")
    def _check_shapes(self) -> LanguageModelConfig:
        if self.pretrained is not None:  # its own layout (some set head_dim apart from dim / heads)
            return self
        _check_heads_divide_dim("LanguageModelConfig", self.dim, self.heads)
        if (self.dim // self.heads) % 2 != 0:
            raise ValueError(
                f"LanguageModelConfig: head dim dim/heads={self.dim // self.heads} must be even "
                "for rotary embeddings (channels are rotated in pairs)"
            )
        return self


class QFormerConfig(BaseModel):
    """BLIP-2's Querying Transformer: learned queries that read a frozen image tower."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_queries: PositiveInt = 32
    dim: PositiveInt = 128
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    cross_attention_every: PositiveInt = 2
    """Queries cross-attend to the image in layers 0, N, 2N, ... (BLIP-2: every other layer)."""
    max_text_len: PositiveInt = 64

    @model_validator(mode="after")
    def _check_shapes(self) -> QFormerConfig:
        _check_heads_divide_dim("QFormerConfig", self.dim, self.heads)
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class MedConfig(BaseModel):
    """BLIP's multimodal mixture of encoder-decoder: one BERT-style text transformer that runs as a
    unimodal text encoder, an image-grounded text encoder or an image-grounded decoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: PositiveInt = 64
    depth: PositiveInt = 2
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    max_text_len: PositiveInt = 64
    """Text tokens at most, the mode token ([CLS], [ENC] or [DEC]) not counted."""

    @model_validator(mode="after")
    def _check_shapes(self) -> MedConfig:
        _check_heads_divide_dim("MedConfig", self.dim, self.heads)
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class ResamplerConfig(BaseModel):
    """Qwen-VL's position-aware adapter: one cross-attention layer whose learned queries, laid out on
    a square grid, read the image's patch tokens; every image becomes `num_queries` tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_queries: PositiveInt = 256
    heads: PositiveInt = 4
    dim: PositiveInt | None = None
    """The attention width (default: the LM's); ModelConfig checks it against heads."""

    @model_validator(mode="after")
    def _check_shapes(self) -> ResamplerConfig:
        side = math.isqrt(self.num_queries)
        if side * side != self.num_queries:
            raise ValueError(f"ResamplerConfig: num_queries={self.num_queries} is not a square number (allowed: 4, 9, 16, ..., 256); the queries sit on a square grid")
        return self


class FlamingoConfig(BaseModel):
    """Flamingo's image path into a frozen LM: a Perceiver Resampler turns each image into
    `num_latents` tokens, and gated cross-attention blocks before every `cross_attention_every`-th
    LM block let text read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_latents: PositiveInt = 16
    depth: PositiveInt = 2
    """Perceiver Resampler layers."""
    heads: PositiveInt = 4
    max_frames: PositiveInt = 1
    """Frames per media item with their own time embedding (1: still images)."""
    cross_attention_every: PositiveInt = 1
    """A gated cross-attention block before LM blocks 0, N, 2N, ... (Flamingo-3B: every block; 80B: every 7th)."""
    max_images: PositiveInt = 5
    """The most images one sequence may hold (interleaved training sequences and few-shot prompts)."""


class UniPerceiverConfig(BaseModel):
    """Uni-Perceiver: one shared Transformer encoder for every modality, light modality tokenizers in front
    (text BPE ids, image patches, video frames' patches), and tasks posed as the similarity between an
    input's representation and its targets' representations through the same encoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: PositiveInt = 64
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    max_text_len: PositiveInt = 48
    max_frames: PositiveInt = 4
    """Video frames with their own temporal position embedding (a still image is read as an image)."""
    mask_ratio: float = 0.15
    """Masked language modelling: the fraction of text tokens masked (BERT, Uni-Perceiver)."""

    @model_validator(mode="after")
    def _check_shapes(self) -> UniPerceiverConfig:
        _check_heads_divide_dim("UniPerceiverConfig", self.dim, self.heads)
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"UniPerceiverConfig: mask_ratio={self.mask_ratio} must be in (0, 1)")
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class VqConfig(BaseModel):
    """A vector-quantised image tokenizer (VQ-VAE): convolutions down `downsample` times, every cell of the
    latent grid replaced by its nearest of `codebook_size` code vectors, and convolutions back up. OFA's image
    codes: an image is (image_size / downsample)^2 tokens of a vocabulary of `codebook_size`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codebook_size: PositiveInt = 256
    code_dim: PositiveInt = 32
    hidden: PositiveInt = 64
    downsample: Literal[2, 4, 8, 16] = 8
    beta: PositiveFloat = 0.25
    """The commitment loss's weight: how strongly the encoder's outputs are pulled to their codes."""


class OfaConfig(BaseModel):
    """OFA: one Transformer encoder-decoder over one vocabulary (text BPE, location tokens, image codes). The
    encoder reads the image's patch tokens (model.vision) and the instruction; the decoder writes the answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: PositiveInt = 64
    encoder_depth: PositiveInt = 3
    decoder_depth: PositiveInt = 3
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    max_positions: PositiveInt = 256
    """Learned positions of the instruction tokens in the encoder and of the answer tokens in the decoder."""

    @model_validator(mode="after")
    def _check_shapes(self) -> OfaConfig:
        _check_heads_divide_dim("OfaConfig", self.dim, self.heads)
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class DiTConfig(BaseModel):
    """A diffusion transformer on spacetime patches (DiT's adaLN-Zero blocks; Sora's tokens): the latent video
    (C, T, H, W) is cut into patches of patch_frames x patch_size x patch_size, each a token; blocks attend over
    all tokens (`full`) or alternate attention within each frame and across frames at each place (`factorised`,
    Latte's interleaved blocks). The timestep and the pooled caption modulate every block; with
    `cross_attention` the blocks also read the caption's tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: PositiveInt = 128
    depth: PositiveInt = 6
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 4.0
    patch_size: PositiveInt = 2
    patch_frames: PositiveInt = 1
    attention: Literal["full", "factorised"] = "full"
    cross_attention: bool = True

    @model_validator(mode="after")
    def _check_shapes(self) -> DiTConfig:
        _check_heads_divide_dim("DiTConfig", self.dim, self.heads)
        if self.dim % 4:
            raise ValueError(f"DiTConfig: dim={self.dim} must be a multiple of 4 (2D sine-cosine positions)")
        if self.attention == "factorised" and self.depth % 2:
            raise ValueError(f"DiTConfig: attention 'factorised' alternates space and time blocks, so depth={self.depth} must be even")
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)


class VideoAutoencoderConfig(BaseModel):
    """Sora's video compression network: causal (2+1)D convolutions that compress space by `downsample` and time by
    `time_downsample` into a latent of `latent_channels`, and a decoder back to pixels. Causal in time, so the
    first frame is encoded alone: a one-frame video (an image) is one latent frame, and 1 + k * time_downsample
    frames are 1 + k latent frames. A variational autoencoder (latent diffusion's): the encoder gives a mean
    and a log-variance, and a small KL term keeps the latents near a unit Gaussian."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latent_channels: PositiveInt = 4
    hidden: PositiveInt = 16
    """Channels of the full-resolution convolutions; each spatial downsampling doubles them."""
    downsample: Literal[1, 2, 4, 8] = 4
    time_downsample: Literal[1, 2, 4] = 2
    kl_weight: float = Field(1e-6, ge=0)
    groups: PositiveInt = 8
    """Group normalisation's groups; divides every width."""

    @model_validator(mode="after")
    def _check_groups(self) -> VideoAutoencoderConfig:
        if self.hidden % self.groups:
            raise ValueError(f"VideoAutoencoderConfig: groups={self.groups} must divide hidden={self.hidden}")
        return self

    @property
    def levels(self) -> int:
        """Spatial halvings: log2(downsample)."""
        return int(math.log2(self.downsample))


class DiffusionConfig(BaseModel):
    """A latent diffusion model of videos: the transformer, its noise schedule, what it predicts, and how often a
    training caption is dropped (the unconditional model classifier-free guidance needs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dit: DiTConfig = DiTConfig()
    schedule: NoiseScheduleConfig = NoiseScheduleConfig()
    prediction: Literal["epsilon", "v"] = "v"
    caption_dropout: float = Field(0.1, ge=0, lt=1)
    min_snr_gamma: float | None = Field(None, gt=0)
    """Min-SNR-gamma loss weighting (Hang et al. 2023): each training sample's loss is weighted so that, read as an
    error in x0, it counts min(SNR(t), gamma) rather than SNR(t) (epsilon) or SNR(t) + 1 (v), which takes weight
    off the nearly clean timesteps; None trains on the plain mean squared error. The held-out loss is never weighted."""
    min_snr_floor: float = Field(0.0, ge=0, le=1)
    """The least weight any sample's loss keeps under min_snr_gamma. For v-prediction Min-SNR weighs the noisiest
    timesteps by SNR / (SNR + 1), all but nothing, and those are where a clip's layout and motion are set."""

    @model_validator(mode="after")
    def _check_weighting(self) -> DiffusionConfig:
        if self.min_snr_floor and self.min_snr_gamma is None:
            raise ValueError(f"min_snr_floor={self.min_snr_floor} needs min_snr_gamma: it is the floor of Min-SNR's weights")
        return self
