"""Zero-shot classification with a contrastive model: class embeddings from prompt templates.

Each class embedding is the normalised mean of the text embeddings of the
class name in every template (CLIP's prompt ensembling); an image takes the
class with the highest cosine similarity.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from components.data.llava_json import load_image, load_llava_json, resolve_image
from components.data.tokenizer import TextTokenizer


@torch.no_grad()
def class_embeddings(model, tokenizer: TextTokenizer, classes: list[str], templates: list[str]) -> torch.Tensor:
    texts = [template.format(name) for name in classes for template in templates]
    encoded = [tokenizer.encode(text) + [tokenizer.eos_id] for text in texts]
    width = max(map(len, encoded))
    ids = torch.full((len(encoded), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    emb = model.encode_text(ids, mask).view(len(classes), len(templates), -1)  # (classes, templates, E)
    return F.normalize(emb.mean(dim=1), dim=-1)


@torch.no_grad()
def zero_shot_accuracy(
    model, tokenizer: TextTokenizer, captions_json: Path, image_root: Path, image_size: int, templates: list[str]
) -> dict[str, float]:
    """Classify the single-object scenes of a split by '{colour} {shape}'; report accuracy."""
    model.eval()
    samples = [s for s in load_llava_json(captions_json) if len(s.get("scene", {}).get("objects", [])) == 1]
    if not samples:
        return {}
    labels = [f"{o['colour']} {o['shape']}" for s in samples for o in s["scene"]["objects"]]
    classes = sorted(set(labels))
    text = class_embeddings(model, tokenizer, classes, templates)
    correct = 0
    for start in range(0, len(samples), 64):
        chunk = samples[start : start + 64]
        pixels = torch.stack([load_image(resolve_image(image_root, s["image"]), image_size) for s in chunk])
        predicted = (model.encode_image(pixels) @ text.t()).argmax(dim=1)
        correct += sum(classes[p] == labels[start + i] for i, p in enumerate(predicted.tolist()))
    return {"zero_shot_accuracy": correct / len(samples), "zero_shot_classes": float(len(classes)), "zero_shot_items": float(len(samples))}
