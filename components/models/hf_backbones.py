"""Pretrained HF transformers towers behind the interfaces of mmops' own towers.

`HFVisionTower` stands where `VisionTransformer` does (CLIP or SigLIP vision models) and
`HFCausalLM` where `DecoderLM` does (Llama, Mistral, Qwen2, Qwen3). Each keeps the HF model as
its submodule `hf`, so its parameters are `vision.hf.*` and `language_model.hf.*`: freeze plans,
`init:` and checkpoints speak of the parts `vision` and `language_model` as for our own towers.

With `load_weights` the HF weights are read from the directory (safetensors only, never over the
network); without it the model is built from its config.json alone, for a checkpoint of ours to
be loaded over it (evaluation, the served model), which therefore never needs the original weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from components.models.config import LanguageModelConfig, VisionConfig
from components.models.hf_config import PretrainedDirError, hf_language_model_config, hf_vision_config, import_transformers, vision_kind
from components.models.language_model import BeforeBlock, DecoderLM
from components.models.vision import VisionTransformer


def _from_pretrained(model_class, directory: Path) -> nn.Module:
    try:  # float32 whatever the checkpoint's dtype: precision is the trainer's business
        model = model_class.from_pretrained(directory, local_files_only=True, use_safetensors=True, dtype=torch.float32)
    except OSError as exc:
        raise PretrainedDirError(f"{directory}: cannot load its safetensors weights ({exc})") from None
    return model.train()  # HF hands it over in eval mode; like any new module (and our towers) it starts in training mode


class HFVisionTower(nn.Module):
    """A CLIP or SigLIP vision model read from a local directory.

    It takes our pixels (B, 3, S, S) in [-1, 1] and normalises them as the model was trained (cfg's
    pixel statistics come from its preprocessor_config.json, see hf_config.vision_fields), and keeps
    our towers' contract of (B, 1 + N, D) hidden states with a summary token first, which LLaVA drops.
    CLIP's is its class token. SigLIP has none: the mean of the patch tokens of the same layer stands
    in for it, so whoever drops index 0 reads exactly SigLIP's N patch tokens, and whoever keeps it
    (BLIP-2's Q-Former) gets a global token in the same space.
    """

    def __init__(self, cfg: VisionConfig, load_weights: bool = True) -> None:
        super().__init__()
        if cfg.pretrained is None:
            raise ValueError("HFVisionTower needs a VisionConfig with `pretrained` set")
        self.cfg = cfg
        kind = vision_kind(cfg.pretrained)
        transformers = import_transformers()
        if load_weights:
            model_class = transformers.CLIPVisionModel if kind == "clip" else transformers.SiglipVisionModel
            self.hf = _from_pretrained(model_class, cfg.pretrained)
        else:
            self.hf = transformers.AutoModel.from_config(hf_vision_config(cfg.pretrained), dtype=torch.float32)
        self.has_class_token = kind == "clip"
        # Derived from the config, so not saved in checkpoints.
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(1, 3, 1, 1), persistent=False)

    def _normalised(self, pixel_values: Tensor) -> Tensor:
        size = self.cfg.image_size
        if tuple(pixel_values.shape[1:]) != (3, size, size):
            raise ValueError(f"HFVisionTower expects pixel_values (B, 3, {size}, {size}); got {tuple(pixel_values.shape)}")
        return (pixel_values - self.pixel_mean) / self.pixel_std

    def hidden_states(self, pixel_values: Tensor, layer: int) -> Tensor:
        """The output of block `layer` (Python indexing over the blocks, as VisionTransformer's):
        HF's tuple starts with the embeddings, so block k >= 0 is its entry k + 1 and a negative
        index is the same entry in both."""
        depth = self.cfg.depth
        if not -depth <= layer < depth:
            raise ValueError(f"HFVisionTower.hidden_states: layer={layer} is out of range for depth={depth}; allowed {-depth}..{depth - 1}")
        states = self.hf(pixel_values=self._normalised(pixel_values), output_hidden_states=True).hidden_states
        hidden = states[layer if layer < 0 else layer + 1]  # (B, 1 + N, D) for CLIP, (B, N, D) for SigLIP
        if self.has_class_token:
            return hidden
        return torch.cat([hidden.mean(dim=1, keepdim=True), hidden], dim=1)  # (B, 1 + N, D)

    def pooled(self, pixel_values: Tensor) -> Tensor:
        """(B, D): the model's own image summary (CLIP: its normed class token; SigLIP: its attention-pooling head)."""
        out = self.hf(pixel_values=self._normalised(pixel_values))
        return out.pooler_output if out.pooler_output is not None else out.last_hidden_state.mean(dim=1)


class HFCausalLM(nn.Module):
    """A decoder-only HF LM read from a local directory, with DecoderLM's interface: embed(ids),
    forward / hidden_states over input embeddings with an explicit (B, past + T) attention mask and
    (B, T) position ids, `lm_head`, and a KV cache that is opaque to callers (HF's Cache object,
    passed back as `past_key_values`).

    Its embeddings are resized to the tokenizer's vocabulary (the dataset's tokenizer is the LM's
    own plus the special tokens mmops adds); new rows start at the mean of the pretrained ones.
    """

    def __init__(self, cfg: LanguageModelConfig, vocab_size: int, load_weights: bool = True) -> None:
        super().__init__()
        if cfg.pretrained is None:
            raise ValueError("HFCausalLM needs a LanguageModelConfig with `pretrained` set")
        self.cfg = cfg
        self.vocab_size = vocab_size
        transformers = import_transformers()
        if load_weights:
            self.hf = _from_pretrained(transformers.AutoModelForCausalLM, cfg.pretrained)
        else:
            self.hf = transformers.AutoModelForCausalLM.from_config(hf_language_model_config(cfg.pretrained), dtype=torch.float32)
        if self.hf.get_input_embeddings().num_embeddings != vocab_size:
            # mean resizing only matters for pretrained rows; a checkpoint will overwrite random ones
            self.hf.resize_token_embeddings(vocab_size, mean_resizing=load_weights)

    @property
    def lm_head(self) -> nn.Module:
        return self.hf.get_output_embeddings()

    def embed(self, input_ids: Tensor) -> Tensor:
        return self.hf.get_input_embeddings()(input_ids)  # (B, T) -> (B, T, D)

    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        past_key_values: object | None = None,
        use_cache: bool = False,
        experts: nn.ModuleList | None = None,
        image_mask: Tensor | None = None,
        before_block: BeforeBlock | None = None,
    ) -> tuple[Tensor, object | None]:
        """Logits (B, T, V) and, with use_cache, the cache covering all past + T positions."""
        hidden, cache = self.hidden_states(
            inputs_embeds, attention_mask, position_ids, past_key_values, use_cache, experts, image_mask, before_block
        )
        return self.lm_head(hidden), cache

    def hidden_states(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        past_key_values: object | None = None,
        use_cache: bool = False,
        experts: nn.ModuleList | None = None,
        image_mask: Tensor | None = None,
        before_block: BeforeBlock | None = None,
    ) -> tuple[Tensor, object | None]:
        """As forward, but the final-normed hidden states (B, T, D). `image_mask` only serves
        visual experts, which a pretrained LM has none of."""
        if experts is not None:
            raise ValueError("visual experts copy mmops' own LM blocks; a pretrained HF LM has none")
        if attention_mask.shape[1] > self.cfg.max_seq_len:
            raise ValueError(f"HFCausalLM: sequence length {attention_mask.shape[1]} exceeds max_seq_len={self.cfg.max_seq_len}")
        hooks = [] if before_block is None else self._hook_before_blocks(before_block)
        try:
            out = self.hf.base_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=past_key_values,
                use_cache=use_cache,
            )
        finally:
            for hook in hooks:
                hook.remove()
        return out.last_hidden_state, (out.cache if use_cache else None)  # (B, T, D)

    def _hook_before_blocks(self, before_block: BeforeBlock) -> list:
        """Run before_block(i, x) on the hidden states entering decoder layer i, for this call only."""

        def hook_for(index: int):
            def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
                return (before_block(index, args[0]), *args[1:]), kwargs

            return before

        layers = self.hf.base_model.layers
        return [layer.register_forward_pre_hook(hook_for(i), with_kwargs=True) for i, layer in enumerate(layers)]


VisionTower = VisionTransformer | HFVisionTower
LanguageModel = DecoderLM | HFCausalLM
