"""The architecture of a LLaVA-style family: which towers, how big, which connector.

One typed config for the whole assembly; the recipe's `model:` section is
parsed into it. Families that differ only in a connector differ only in the
`connector` field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from components.models.config import (
    ConnectorName,
    DiffusionConfig,
    FlamingoConfig,
    LanguageModelConfig,
    MedConfig,
    OfaConfig,
    QFormerConfig,
    ResamplerConfig,
    TextEncoderConfig,
    UniPerceiverConfig,
    VideoAutoencoderConfig,
    VisionConfig,
    VqConfig,
)


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vision: VisionConfig = VisionConfig()
    text_encoder: TextEncoderConfig = TextEncoderConfig()
    clip_embed_dim: Annotated[int, Field(ge=8)] = 128
    language_model: LanguageModelConfig = LanguageModelConfig()
    connector: ConnectorName = "linear"
    vision_feature_layer: int = -2
    """Which ViT block's output feeds the connector (LLaVA's mm_vision_select_layer), Python-indexed
    over the blocks: -1 the last, -2 the penultimate, 0 the first. For a pretrained HF tower, whose
    hidden_states tuple starts with the embeddings, a negative index is the same position in that
    tuple (-2 is LLaVA-1.5's choice) and k >= 0 is hidden_states[k + 1]."""
    blip: MedConfig | None = None
    """BLIP's multimodal mixture of encoder-decoder, for the `blip_pretrain` objective."""
    qformer: QFormerConfig | None = None
    """BLIP-2's Querying Transformer, for the families that read the image through one."""
    resampler: ResamplerConfig | None = None
    """Qwen-VL's cross-attention adapter, for the `resampler` connector."""
    visual_expert: bool = False
    """CogVLM: every LM layer gets an image copy of its QKV, output projection and MLP (part `visual_expert`)."""
    image_positions: Literal["sequential", "shared"] = "sequential"
    """Position ids of image tokens: one each (LLaVA) or one for the whole image (CogVLM)."""
    flamingo: FlamingoConfig | None = None
    """Flamingo's Perceiver Resampler and gated cross-attention, for the `flamingo_interleaved` objective."""
    image_boundaries: bool = False
    """KOSMOS-1: every image's tokens stand between learned `<image>` and `</image>` embeddings
    (part `image_boundaries`), so a decoder reading interleaved documents sees where each image is."""
    uni_perceiver: UniPerceiverConfig | None = None
    """Uni-Perceiver's shared encoder, for the `uni_perceiver` objective; its image tokenizer cuts
    vision.image_size images into vision.patch_size patches with vision's stem and pixel statistics."""
    ofa: OfaConfig | None = None
    """OFA's encoder-decoder, for the `ofa_instruct` objective; it reads images with model.vision's tower."""
    vq: VqConfig | None = None
    """The vector-quantised image tokenizer (the `vq_tokenizer` objective trains it), whose codes are OFA's image tokens."""
    video_autoencoder: VideoAutoencoderConfig | None = None
    """Sora's video compression network (the `video_autoencoder` objective trains it), whose latents the diffusion
    transformer denoises."""
    diffusion: DiffusionConfig | None = None
    """The diffusion transformer, its noise schedule and prediction, for the `diffusion` objective; its captions are
    read by a CLIP text tower of model.text_encoder and clip_embed_dim."""
    anyres_pinpoints: tuple[tuple[PositiveInt, PositiveInt], ...] | None = None
    """LLaVA-1.6's any-resolution input: the (height, width) grids an image may be fitted into,
    each a whole number of vision.image_size tiles; the model then has a learned `image_newline`."""

    @model_validator(mode="after")
    def _feature_layer_exists(self) -> ModelConfig:
        depth = self.vision.depth
        if not -depth <= self.vision_feature_layer < depth:
            raise ValueError(
                f"vision_feature_layer {self.vision_feature_layer} does not exist in a vision tower of depth {depth}"
                f" (allowed: {-depth} .. {depth - 1})"
            )
        if self.connector == "qformer" and self.qformer is None:
            raise ValueError("connector 'qformer' reads the image through a Q-Former: set model.qformer (num_queries, dim, depth, ...)")
        if self.anyres_pinpoints is not None:
            tile = self.vision.image_size
            if not self.anyres_pinpoints:
                raise ValueError("anyres_pinpoints is empty: list (height, width) grids, or leave it out for square input")
            for pin in self.anyres_pinpoints:
                if pin[0] % tile or pin[1] % tile:
                    raise ValueError(f"anyres_pinpoints {list(pin)} is not a whole number of {tile}-pixel tiles (vision.image_size)")
            if self.connector in ("qformer", "resampler"):
                raise ValueError(f"anyres_pinpoints lays out patch tokens on a grid; the {self.connector} connector has no grid (allowed: linear, mlp2x_gelu, swiglu_adapter)")
        if self.connector == "resampler":
            if self.resampler is None:
                raise ValueError("connector 'resampler' compresses the image with learned queries: set model.resampler (num_queries, heads)")
            width = self.resampler.dim or self.language_model.dim
            if width % self.resampler.heads or width % 4:
                raise ValueError(f"model.resampler: the attention width {width} (dim, or the LM's) must be divisible by heads={self.resampler.heads} and by 4")
        return self

    @model_validator(mode="after")
    def _pretrained_towers_fit(self) -> ModelConfig:
        if self.language_model.pretrained is not None and self.visual_expert:
            raise ValueError(
                "visual_expert copies the layers of mmops' own LM; with language_model.pretrained it is not available (allowed: false)"
            )
        return self
