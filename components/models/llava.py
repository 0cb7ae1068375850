"""LLaVA: vision tower -> connector -> image features spliced into a decoder LM."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from components.models.anyres import Size, anyres_view_count, merge_anyres_features
from components.models.greedy import Cache, extend_right, greedy_decode
from components.models.hf_backbones import LanguageModel, VisionTower
from components.models.image_boundaries import ImageBoundaries
from components.models.language_model import position_ids_from_mask, positions_sharing_image

IGNORE_INDEX = -100
PaddingSide = Literal["right", "left"]
LossWeighting = Literal["token", "answer"]
ImagePositions = Literal["sequential", "shared"]


class SplicedInputs(NamedTuple):
    """The LM's input once each `<image>` is replaced by its image tokens; all (B, L) but embeds (B, L, D)."""

    embeds: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    labels: Tensor | None
    image_mask: Tensor
    """True at image tokens."""


def answer_weights(targets: Tensor) -> Tensor:
    """(B, L) targets -> (B, L) weights: each contiguous run of targets (one answer) sums to 1."""
    is_target = targets != IGNORE_INDEX
    starts = is_target & ~F.pad(is_target, (1, 0))[:, :-1]
    run = starts.long().cumsum(-1) + torch.arange(len(targets), device=targets.device)[:, None] * targets.shape[1]
    lengths = torch.bincount(run[is_target], minlength=int(run.max()) + 1 if run.numel() else 1)
    return torch.where(is_target, 1.0 / lengths[run].clamp(min=1).float(), torch.zeros((), device=targets.device))


def next_token_loss(logits: Tensor, labels: Tensor, weighting: LossWeighting = "token") -> Tensor:
    """Cross entropy of token t+1 given tokens <= t over targets != IGNORE_INDEX.

    `token`: the mean over target tokens (LLaVA). `answer`: the mean over answers, each
    answer's tokens averaged first, so a 16-token box does not outweigh a one-word answer.
    A batch with no targets gives 0 (not NaN) so one empty batch cannot poison training.
    """
    targets = labels[:, 1:]  # (B, L - 1)
    losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
    if weighting == "token":
        return losses.sum() / (targets != IGNORE_INDEX).sum().clamp(min=1)
    if weighting == "answer":
        weights = answer_weights(targets)
        return (losses * weights).sum() / weights.sum().clamp(min=1)
    raise ValueError(f"unknown loss weighting {weighting!r}; allowed: 'token', 'answer'")


def target_loss(hidden: Tensor, lm_head: nn.Module, labels: Tensor, weighting: LossWeighting = "token") -> Tensor:
    """next_token_loss computed from hidden states (B, L, D), with lm_head applied only at the
    positions that predict a target: most positions (image, prompt, padding) predict nothing,
    and the vocabulary projection and its softmax were a fifth of a training step."""
    targets = labels[:, 1:]  # (B, L - 1)
    keep = targets != IGNORE_INDEX
    if not keep.any():
        return hidden.sum() * 0.0  # no targets: 0, still connected to the graph
    logits = lm_head(hidden[:, :-1][keep])  # (K, V)
    losses = F.cross_entropy(logits, targets[keep], reduction="none")  # (K,)
    if weighting == "token":
        return losses.mean()
    if weighting == "answer":
        weights = answer_weights(targets)[keep]
        return (losses * weights).sum() / weights.sum()
    raise ValueError(f"unknown loss weighting {weighting!r}; allowed: 'token', 'answer'")


class LlavaModel(nn.Module):
    def __init__(
        self,
        vision: VisionTower,
        connector: nn.Module,
        language_model: LanguageModel,
        image_token_id: int,
        pad_token_id: int,
        vision_feature_layer: int = -2,
        visual_expert: nn.ModuleList | None = None,
        image_positions: ImagePositions = "sequential",
        anyres_pinpoints: tuple[Size, ...] | None = None,
        image_boundaries: ImageBoundaries | None = None,
    ) -> None:
        """`visual_expert`: one VisualExpert per LM block (CogVLM), or None. `image_positions`:
        each image token its own position id (LLaVA) or one shared by the whole image (CogVLM).
        `anyres_pinpoints`: LLaVA-1.6's any-resolution grids; pixel_values are then (B, V, 3, S, S)
        views (see data.llava_images) and a learned `image_newline` ends every row of the tiles' map.
        `image_boundaries`: KOSMOS-1's learned `<image>` and `</image>` around every image, or None."""
        super().__init__()
        self.vision = vision
        self.connector = connector
        self.language_model = language_model
        self.visual_expert = visual_expert
        self.image_token_id = image_token_id
        self.pad_token_id = pad_token_id
        self.vision_feature_layer = vision_feature_layer
        self.image_positions = image_positions
        self.anyres_pinpoints = anyres_pinpoints
        self.image_boundaries = image_boundaries
        if anyres_pinpoints is not None:
            lm_dim = language_model.cfg.dim
            self.image_newline = nn.Parameter(torch.randn(lm_dim) / lm_dim**0.5)  # LLaVA-NeXT's init

    def image_features(self, pixel_values: Tensor, image_sizes: Tensor | None = None) -> Tensor | list[Tensor]:
        """(B, 3, S, S) -> (B, N, D); any-resolution: (B, V, 3, S, S) views and (B, 2) sizes -> one
        (N_b, D) per image: the global view's tokens, then the unpadded tile map with row separators."""
        if self.anyres_pinpoints is None:
            hidden = self.vision.hidden_states(pixel_values, self.vision_feature_layer)  # (B, 1 + N, Dv)
            return self.connector(hidden[:, 1:])  # drop CLS ("patch" select): (B, N, D)
        if image_sizes is None:
            raise ValueError("an any-resolution model needs image_sizes (B, 2), the (height, width) of each image")
        tile = self.vision.cfg.image_size
        sizes = [(int(h), int(w)) for h, w in image_sizes.tolist()]
        counts = [anyres_view_count(s, self.anyres_pinpoints, tile) for s in sizes]
        views = torch.cat([pixel_values[b, :n] for b, n in enumerate(counts)])  # (sum V_b, 3, S, S)
        hidden = self.vision.hidden_states(views, self.vision_feature_layer)[:, 1:]  # (sum V_b, N, Dv)
        features = self.connector(hidden).split(counts)  # per image (V_b, N, D)
        return [
            merge_anyres_features(f, size, self.anyres_pinpoints, tile, self.vision.cfg.patch_size, self.image_newline)
            for f, size in zip(features, sizes)
        ]

    def build_inputs(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        pixel_values: Tensor,
        has_image: Tensor,
        labels: Tensor | None = None,
        padding_side: PaddingSide = "right",
        image_sizes: Tensor | None = None,
    ) -> SplicedInputs:
        """Replace each `<image>` token by its image's N features (between the image boundaries,
        when the model has them) and re-pad.

        input_ids, attention_mask, labels: (B, T); has_image (B,); pixel_values (B, 3, S, S), one
        image per sample, or (B, M, 3, S, S) for interleaved samples of up to M images (KOSMOS-1),
        taken in the order of their `<image>` tokens (an any-resolution model's 5-D input is views).
        Returns the spliced inputs, of length L = the longest spliced sample.
        """
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left'; got {padding_side!r}")
        text_embeds = self.language_model.embed(input_ids)  # (B, T, D)
        per_sample = self._features_per_sample(input_ids, attention_mask, pixel_values, has_image.bool(), image_sizes, text_embeds.dtype)

        embeds, targets, images = [], [], []
        for b, features in enumerate(per_sample):
            real = attention_mask[b].bool()
            ids, emb = input_ids[b][real], text_embeds[b][real]  # (T_b,), (T_b, D)
            lab = labels[b][real] if labels is not None else None
            emb_parts, lab_parts, image_parts, start = [], [], [], 0
            for p, feats in zip((ids == self.image_token_id).nonzero().flatten().tolist(), features):
                emb_parts += [emb[start:p], feats]
                image_parts += [ids.new_zeros(p - start, dtype=torch.bool), self._image_mask(feats.shape[0], ids.device)]
                if lab is not None:
                    lab_parts += [lab[start:p], lab.new_full((feats.shape[0],), IGNORE_INDEX)]
                start = p + 1
            emb_parts.append(emb[start:])
            image_parts.append(ids.new_zeros(len(ids) - start, dtype=torch.bool))
            embeds.append(torch.cat(emb_parts))
            images.append(torch.cat(image_parts))
            if lab is not None:
                targets.append(torch.cat([*lab_parts, lab[start:]]))
        return self._pad(embeds, targets if labels is not None else None, images, attention_mask, padding_side)

    def _features_per_sample(
        self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor,
        image_sizes: Tensor | None, dtype: torch.dtype,
    ) -> list[list[Tensor]]:
        """Each sample's images as spliced (N_i, D) tensors, in `<image>` order, after checking that
        every sample has one `<image>` per image it brings."""
        interleaved = pixel_values.dim() == 5 and self.anyres_pinpoints is None
        most = pixel_values.shape[1] if interleaved else 1
        counts = ((input_ids == self.image_token_id) & attention_mask.bool()).sum(-1).tolist()
        for b, (found, has) in enumerate(zip(counts, has_image.tolist())):
            if not has and found:
                raise ValueError(f"sample {b}: has_image=False needs exactly 0 <image> token(s) (id {self.image_token_id}), found {found}")
            if has and not 1 <= found <= most:
                needed = "exactly 1" if most == 1 else f"1 to {most}"
                raise ValueError(f"sample {b}: has_image=True needs {needed} <image> token(s) (id {self.image_token_id}), found {found}")
        if not any(counts):
            return [[] for _ in counts]
        if interleaved:
            flat = self.image_features(torch.cat([pixel_values[b, :n] for b, n in enumerate(counts) if n]))  # (sum n, N, D)
            features = list(flat.to(dtype).split(counts))
        else:
            sizes = image_sizes[has_image] if image_sizes is not None else None
            found = iter(f.to(dtype) for f in self.image_features(pixel_values[has_image], sizes))
            features = [[next(found)] if n else [] for n in counts]
        if self.image_boundaries is not None:
            return [[self.image_boundaries(f) for f in sample] for sample in features]
        return [list(sample) for sample in features]

    def _image_mask(self, length: int, device: torch.device) -> Tensor:
        """True at the image tokens of one spliced image; its boundaries, if any, are text."""
        mask = torch.ones(length, dtype=torch.bool, device=device)
        if self.image_boundaries is not None:
            mask[[0, -1]] = False
        return mask

    def _pad(
        self, embeds: list[Tensor], labels: list[Tensor] | None, images: list[Tensor], like_mask: Tensor, side: PaddingSide
    ) -> SplicedInputs:
        B, L, D = len(embeds), max(len(e) for e in embeds), embeds[0].shape[-1]
        out_embeds = embeds[0].new_zeros(B, L, D)
        out_mask = like_mask.new_zeros(B, L)
        out_images = torch.zeros(B, L, dtype=torch.bool, device=like_mask.device)
        out_labels = None if labels is None else labels[0].new_full((B, L), IGNORE_INDEX)
        for b, emb in enumerate(embeds):
            n = len(emb)
            span = slice(0, n) if side == "right" else slice(L - n, L)
            out_embeds[b, span] = emb
            out_mask[b, span] = 1
            out_images[b, span] = images[b]
            if out_labels is not None:
                out_labels[b, span] = labels[b]
        shared = self.image_positions == "shared"
        positions = positions_sharing_image(out_mask, out_images) if shared else position_ids_from_mask(out_mask)
        return SplicedInputs(out_embeds, out_mask, positions, out_labels, out_images)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        pixel_values: Tensor,
        has_image: Tensor,
        labels: Tensor | None = None,
        loss_weighting: LossWeighting = "token",
        image_sizes: Tensor | None = None,
    ) -> dict[str, Tensor | None]:
        """With labels: {"loss"} (lm_head applied at target positions only). Without: {"logits"} (B, L, V)."""
        embeds, mask, positions, labels, image_mask = self.build_inputs(
            input_ids, attention_mask, pixel_values, has_image, labels, image_sizes=image_sizes
        )
        lm = self.language_model
        hidden, _ = lm.hidden_states(embeds, mask, positions, experts=self.visual_expert, image_mask=image_mask)  # (B, L, D)
        if labels is None:
            return {"loss": None, "logits": lm.lm_head(hidden)}
        return {"loss": target_loss(hidden, lm.lm_head, labels, loss_weighting), "logits": None}

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        pixel_values: Tensor,
        has_image: Tensor,
        max_new_tokens: int,
        eos_token_id: int,
        use_cache: bool = True,
        image_sizes: Tensor | None = None,
    ) -> list[list[int]]:
        """Greedy decoding from LEFT-padded prompts; returns new ids per sample, eos excluded."""
        embeds, mask, positions, _, image_mask = self.build_inputs(
            input_ids, attention_mask, pixel_values, has_image, padding_side="left", image_sizes=image_sizes
        )
        lm, experts = self.language_model, self.visual_expert

        def run(new_embeds: Tensor, mask: Tensor, positions: Tensor, cache: Cache) -> tuple[Tensor, Cache]:
            tokens_image = extend_right(image_mask, mask.shape[1], False)[:, -new_embeds.shape[1] :]  # generated: text
            return lm(new_embeds, mask, positions, cache, use_cache=use_cache, experts=experts, image_mask=tokens_image)

        return greedy_decode(run, lm.embed, embeds, mask, positions, max_new_tokens, eos_token_id, use_cache)
