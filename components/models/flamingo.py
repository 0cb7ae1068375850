"""Flamingo: a frozen LM reads images through gated cross-attention, never through its input sequence.

Each image becomes `num_latents` tokens through the Perceiver Resampler; the text
keeps one `<image>` token where each image stands. Gated cross-attention blocks,
run before every N-th LM block, let a text token attend to the latents of the latest
image before it only. With the gates at zero the model is the text-only LM.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from components.models.gated_cross_attention import latest_media_index, media_mask
from components.models.greedy import Cache, extend_right, greedy_decode
from components.models.hf_backbones import LanguageModel, VisionTower
from components.models.language_model import BeforeBlock, position_ids_from_mask
from components.models.llava import LossWeighting, target_loss
from components.models.perceiver import PerceiverResampler


class FlamingoModel(nn.Module):
    def __init__(
        self,
        vision: VisionTower,
        connector: PerceiverResampler,
        language_model: LanguageModel,
        gated_cross_attention: nn.ModuleList,
        image_token_id: int,
        pad_token_id: int,
        vision_feature_layer: int = -1,
        cross_attention_every: int = 1,
    ) -> None:
        """`connector`: the Perceiver Resampler (the part that carries the image to the LM, as in the
        other families); `gated_cross_attention`: one block per `cross_attention_every` LM blocks."""
        super().__init__()
        needed = -(-language_model.cfg.depth // cross_attention_every)
        if len(gated_cross_attention) != needed:
            raise ValueError(
                f"FlamingoModel: {language_model.cfg.depth} LM blocks with a cross-attention block before every "
                f"{cross_attention_every} need {needed} gated blocks; got {len(gated_cross_attention)}"
            )
        self.vision = vision
        self.connector = connector
        self.language_model = language_model
        self.gated_cross_attention = gated_cross_attention
        self.image_token_id = image_token_id
        self.pad_token_id = pad_token_id
        self.vision_feature_layer = vision_feature_layer
        self.cross_attention_every = cross_attention_every

    def media(self, pixel_values: Tensor) -> Tensor:
        """(B, M, 3, S, S) images, or (B, 3, S, S) one each -> (B, M * num_latents, Dv) visual tokens."""
        if pixel_values.dim() == 4:
            pixel_values = pixel_values[:, None]
        B, M = pixel_values.shape[:2]
        hidden = self.vision.hidden_states(pixel_values.flatten(0, 1), self.vision_feature_layer)[:, 1:]  # (B*M, N, Dv)
        latents = self.connector(hidden)  # (B*M, n, Dv)
        return latents.reshape(B, M * latents.shape[1], latents.shape[2])

    def _before_block(self, media: Tensor, latest: Tensor) -> BeforeBlock:
        """The gated cross-attention for tokens whose latest image index is `latest` (B, T)."""
        per_media = self.connector.latents.shape[0]
        mask, sees_media = media_mask(latest, per_media, media.shape[1] // per_media)

        def before(index: int, x: Tensor) -> Tensor:
            if index % self.cross_attention_every:
                return x
            return self.gated_cross_attention[index // self.cross_attention_every](x, media, mask, sees_media)

        return before

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        pixel_values: Tensor,
        has_image: Tensor | None = None,
        labels: Tensor | None = None,
        loss_weighting: LossWeighting = "token",
        image_sizes: Tensor | None = None,
    ) -> dict[str, Tensor | None]:
        """input_ids (B, T) with one `<image>` per image, in the order of pixel_values (B, M, 3, S, S).
        With labels: {"loss"}; without: {"logits"} (B, T, V). has_image and image_sizes are unused
        (the `<image>` tokens say where images are), accepted so every family trains the same way."""
        lm = self.language_model
        before = self._before_block(self.media(pixel_values), latest_media_index(input_ids, self.image_token_id))
        positions = position_ids_from_mask(attention_mask)
        hidden, _ = lm.hidden_states(lm.embed(input_ids), attention_mask, positions, before_block=before)  # (B, T, D)
        if labels is None:
            return {"loss": None, "logits": lm.lm_head(hidden)}
        return {"loss": target_loss(hidden, lm.lm_head, labels, loss_weighting), "logits": None}

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        pixel_values: Tensor,
        has_image: Tensor | None,
        max_new_tokens: int,
        eos_token_id: int,
        use_cache: bool = True,
        image_sizes: Tensor | None = None,
    ) -> list[list[int]]:
        """Greedy decoding from LEFT-padded prompts; generated tokens read the prompt's last image."""
        lm = self.language_model
        media = self.media(pixel_values)
        latest = latest_media_index(input_ids, self.image_token_id)  # (B, L)

        def run(new_embeds: Tensor, mask: Tensor, positions: Tensor, cache: Cache) -> tuple[Tensor, Cache]:
            tokens_latest = extend_right(latest, mask.shape[1], latest[:, -1:])[:, -new_embeds.shape[1] :]
            return lm(new_embeds, mask, positions, cache, use_cache=use_cache, before_block=self._before_block(media, tokens_latest))

        positions = position_ids_from_mask(attention_mask)
        return greedy_decode(run, lm.embed, lm.embed(input_ids), attention_mask, positions, max_new_tokens, eos_token_id, use_cache)
