"""Uni-Perceiver's multi-task pretraining: each step samples one task and trains on it alone.

Every task is a softmax over candidate targets by cosine similarity through the one
shared encoder (components.models.uni_perceiver):
  retrieval:  each image against the batch's captions and each caption against its images (CLIP's loss)
  mlm:        masked caption tokens against every word of the vocabulary (text alone, BERT's masking)
  captioning: after its image and the caption so far, the next caption token against every word
  classification: each single-object scene against every class name (its colour and shape), a class's
              target the normalised mean of its name in every prompt template, as zero-shot evaluation scores it
The sampler draws the task from its own seeded generator (weights from the recipe), so a stage
draws the same tasks in the same order on every run; the masks come from the same generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from components.data.tokenizer import TextTokenizer
from components.evaluation.embeddings import encode_texts
from components.evaluation.zero_shot import template_means
from components.models.uni_perceiver import UniPerceiver
from components.training.losses import clip_loss, unicl_loss

TASKS = ("retrieval", "mlm", "captioning", "classification")
CAPTION_TASKS = TASKS[:3]
"""The tasks that read nothing but image-caption pairs: a stage's tasks when its recipe names none."""


@dataclass(frozen=True)
class ClassPrompts:
    """The classification task's targets: every class name in every template, encoded class by class."""

    text_ids: Tensor
    """(classes * templates, T): class 0 in each template, then class 1, ..."""
    text_mask: Tensor
    templates: int

    def __post_init__(self) -> None:
        if self.templates < 1 or len(self.text_ids) % self.templates or self.text_ids.shape != self.text_mask.shape:
            raise ValueError(f"class prompts: {tuple(self.text_ids.shape)} ids, {tuple(self.text_mask.shape)} mask, {self.templates} "
                             "templates: need one row per class and template and a mask of the same shape")

    @property
    def classes(self) -> int:
        return len(self.text_ids) // self.templates


def class_prompts(tokenizer: TextTokenizer, classes: Sequence[str], templates: Sequence[str], max_len: int) -> ClassPrompts:
    """Every class name in every template (each with one '{}'), in the order zero-shot evaluation encodes them."""
    ids, mask = encode_texts(tokenizer, [template.format(name) for name in classes for template in templates], max_len)
    return ClassPrompts(ids, mask, len(templates))


def retrieval_loss(model: UniPerceiver, batch: dict[str, Tensor]) -> Tensor:
    """Images against the batch's texts, both ways. With image-label data in the batch (`pair_labels`: single-object
    scenes with a prompt of their class, see data.label_prompts) this is also Uni-Perceiver's image classification,
    a similarity to class names, and pairs that share a label are positives for one another (UniCL's loss)."""
    image, text = model.encode_image(batch["pixel_values"]), model.encode_text(batch["text_ids"], batch["text_mask"])
    if "pair_labels" in batch:
        return unicl_loss(image, text, model.scale(), batch["pair_labels"])
    return clip_loss(image, text, model.scale())


def mask_tokens(mask: Tensor, ratio: float, generator: torch.Generator) -> Tensor:
    """(B, T) bool: about `ratio` of each text's real tokens, at least one."""
    real = mask.bool()
    draw = torch.rand(mask.shape, generator=generator).to(mask.device)
    masked = real & (draw < ratio)
    first = torch.where(real, draw, torch.full_like(draw, 2.0)).argmin(-1)  # the real token with the smallest draw
    masked[torch.arange(len(mask)), first] = True
    return masked


def mlm_loss(model: UniPerceiver, batch: dict[str, Tensor], generator: torch.Generator) -> Tensor:
    ids, mask = batch["text_ids"], batch["text_mask"]
    masked = mask_tokens(mask, model.cfg.mask_ratio, generator)
    outputs = model.encode(*model.text_tokens(ids, mask, masked))[:, 1:]  # (B, T, D)
    logits = model.scale() * model.embed(outputs[masked]) @ model.word_targets().t()  # (K, V)
    return F.cross_entropy(logits, ids[masked])


def captioning_loss(model: UniPerceiver, batch: dict[str, Tensor]) -> Tensor:
    image, image_mask = model.image_tokens(batch["pixel_values"])
    text, text_mask = model.text_tokens(batch["text_ids"], batch["text_mask"])
    outputs = model.encode(torch.cat([image, text], 1), torch.cat([image_mask, text_mask], 1), causal_from=image.shape[1])
    after = outputs[:, 1 + image.shape[1] :][:, :-1]  # text positions 0 .. T-2, each predicting the next token
    targets = batch["text_ids"][:, 1:]
    real = batch["text_mask"][:, 1:].bool()
    logits = model.scale() * model.embed(after[real]) @ model.word_targets().t()  # (K, V)
    return F.cross_entropy(logits, targets[real])


def classification_loss(model: UniPerceiver, batch: dict[str, Tensor], prompts: ClassPrompts) -> Tensor | None:
    """Cross-entropy of the batch's single-object scenes (`object_classes` >= 0) over every class; None when the
    batch has none."""
    labels = batch["object_classes"]
    labelled = labels >= 0
    if not labelled.any():
        return None
    image = model.encode_image(batch["pixel_values"][labelled])
    names = model.encode_text(prompts.text_ids.to(labels.device), prompts.text_mask.to(labels.device))
    targets = template_means(names, prompts.templates)
    return F.cross_entropy(model.scale() * image @ targets.t(), labels[labelled])


class TaskSampler:
    """The `uni_perceiver` objective: (model, batch) -> (loss, metrics), one sampled task per call."""

    def __init__(self, weights: Mapping[str, float], seed: int = 0, class_prompts: ClassPrompts | None = None) -> None:
        unknown = sorted(set(weights) - set(TASKS))
        if unknown or not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
            raise ValueError(f"Uni-Perceiver task weights {dict(weights)}: non-negative, one at least positive, of the tasks {', '.join(TASKS)}")
        if weights.get("classification", 0) > 0 and class_prompts is None:
            raise ValueError("Uni-Perceiver's classification task needs the class prompts it scores images against")
        self.class_prompts = class_prompts
        self.tasks = [t for t in TASKS if weights.get(t, 0) > 0]
        self.weights = torch.tensor([float(weights[t]) for t in self.tasks])
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, model: UniPerceiver, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        task = self.tasks[int(torch.multinomial(self.weights, 1, generator=self.generator))]
        loss = classification_loss(model, batch, self.class_prompts) if task == "classification" else None
        if task == "classification" and loss is None:  # no scene of one object in the batch
            task = "retrieval"
        if task == "retrieval":
            loss = retrieval_loss(model, batch)
        elif task == "mlm":
            loss = mlm_loss(model, batch, self.generator)
        elif task == "captioning":
            loss = captioning_loss(model, batch)
        return loss, {f"{task}_loss": loss.detach(), "logit_scale": model.scale().detach()}
