"""Linear probes of a frozen vision tower: can the patch token under an object tell its colour and shape?

A LLaVA model reads objects from the tower's patch tokens; if a linear
classifier cannot read an attribute from the token at an object's centre,
the language model will struggle to answer questions about it. Logged with
the contrastive stage so feature quality is measured, not guessed.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from components.data.llava_json import load_image, load_llava_json, resolve_image
from components.data.shapes_world import Scene
from components.models.vision import VisionTransformer


def fit_probe(features: torch.Tensor, labels: torch.Tensor, steps: int = 200, l2: float = 1e-3) -> torch.nn.Linear:
    """Multinomial logistic regression (LBFGS) on standardised features (N, D) -> classes."""
    probe = torch.nn.Linear(features.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(probe(features), labels) + l2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


def probe_accuracy(features: torch.Tensor, labels: torch.Tensor, train_fraction: float = 0.75) -> float:
    """Held-out accuracy of a linear probe; the first train_fraction of rows fit it."""
    n = int(len(features) * train_fraction)
    mean, std = features[:n].mean(0), features[:n].std(0) + 1e-6
    x = (features - mean) / std
    with torch.enable_grad():
        probe = fit_probe(x[:n], labels[:n])
    with torch.no_grad():
        return float((probe(x[n:]).argmax(1) == labels[n:]).float().mean())


@torch.no_grad()
def object_token_features(
    vision: VisionTransformer, captions_json: Path, image_root: Path, layer: int, limit: int = 1500
) -> tuple[torch.Tensor, list[dict]]:
    """The patch token (at `layer`) under each object's centre, with the object's annotation."""
    cfg = vision.cfg
    grid = cfg.image_size // cfg.patch_size
    samples = [s for s in load_llava_json(captions_json)[:limit] if s.get("scene")]
    rows, objects = [], []
    for start in range(0, len(samples), 100):
        chunk = samples[start : start + 100]
        pixels = torch.stack([load_image(resolve_image(image_root, s["image"]), cfg.image_size) for s in chunk])
        tokens = vision.hidden_states(pixels, layer)[:, 1:]  # (B, N, D) without CLS
        for b, sample in enumerate(chunk):
            scene = Scene.from_dict(sample["scene"])  # the image was resized to the tower's square input
            sx, sy = cfg.image_size / scene.width, cfg.image_size / scene.height
            for obj in sample["scene"]["objects"]:
                x0, y0, x1, y1 = (c * f for c, f in zip(obj["box"], (sx, sy, sx, sy)))
                col, row = int((x0 + x1) / 2) // cfg.patch_size, int((y0 + y1) / 2) // cfg.patch_size
                rows.append(tokens[b, min(row, grid - 1) * grid + min(col, grid - 1)])
                objects.append(obj)
    return torch.stack(rows), objects


def attribute_probes(vision: VisionTransformer, captions_json: Path, image_root: Path, layer: int) -> dict[str, float]:
    vision.eval()
    features, objects = object_token_features(vision, captions_json, image_root, layer)
    metrics = {}
    for attribute in ("colour", "shape"):
        names = sorted({o[attribute] for o in objects})
        labels = torch.tensor([names.index(o[attribute]) for o in objects])
        metrics[f"probe_{attribute}_accuracy"] = probe_accuracy(features, labels)
    return metrics
