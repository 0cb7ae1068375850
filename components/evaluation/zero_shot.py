"""Zero-shot classification with a contrastive model: class embeddings from prompt templates.

Each class embedding is the normalised mean of the text embeddings of the
class name in every template (CLIP's prompt ensembling); an image takes the
class with the highest cosine similarity.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from components.data.label_prompts import object_class
from components.data.llava_json import load_llava_json, resolve_image
from components.data.tokenizer import TextTokenizer
from components.evaluation.embeddings import image_embeddings, text_embeddings


@torch.no_grad()
def class_embeddings(model, tokenizer: TextTokenizer, classes: list[str], templates: list[str]) -> torch.Tensor:
    """(classes, E): per class, the normalised mean over templates of its prompts' embeddings."""
    texts = [template.format(name) for name in classes for template in templates]
    return template_means(text_embeddings(model, tokenizer, texts), len(templates))


def template_means(embeddings: torch.Tensor, templates: int) -> torch.Tensor:
    """(classes * templates, E) prompt embeddings, class by class -> (classes, E): each class's normalised mean."""
    return F.normalize(embeddings.view(-1, templates, embeddings.shape[-1]).mean(dim=1), dim=-1)


@torch.no_grad()
def zero_shot_accuracy(
    model, tokenizer: TextTokenizer, captions_json: Path, image_root: Path, image_size: int, templates: list[str]
) -> dict[str, float]:
    """Classify the single-object scenes of a split by '{colour} {shape}'; report accuracy."""
    model.eval()
    samples = [s for s in load_llava_json(captions_json) if object_class(s) is not None]
    if not samples:
        return {}
    labels = [object_class(s) for s in samples]
    classes = sorted(set(labels))
    text = class_embeddings(model, tokenizer, classes, templates)
    images = image_embeddings(model, [resolve_image(image_root, s["image"]) for s in samples], image_size)
    predicted = (images @ text.t()).argmax(dim=1).tolist()
    correct = sum(classes[p] == label for p, label in zip(predicted, labels))
    return {"zero_shot_accuracy": correct / len(samples), "zero_shot_classes": float(len(classes)), "zero_shot_items": float(len(samples))}
