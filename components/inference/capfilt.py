"""BLIP's CapFilt over a captions file: caption every image, keep the captions the filter believes.

For each image the captioner (BLIP's image-grounded decoder) writes a synthetic
caption by nucleus sampling; the filter (its ITM head) then judges the original
caption and the synthetic one, and each is kept only when the image and it
match with probability at least `threshold`. The bootstrapped corpus holds one
sample per kept caption, so an image may appear zero, one or two times.

Where samples say which captions are wrong (`caption_noisy`, the Shapes world's
caption noise), the statistics say how much of the noise the filter removed and
how many true captions it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field

from components.data.llava_json import load_image, resolve_image
from components.data.tokenizer import TextTokenizer
from components.evaluation.embeddings import encode_texts
from components.inference.captioning import captions_from_features
from components.models.blip import BlipModel

SYNTHETIC_SUFFIX = "-capfilt"


class CapFiltConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    top_p: Annotated[float, Field(gt=0, le=1)] = 0.9
    """The captioner's nucleus (BLIP: 0.9)."""
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """The least ITM match probability a kept caption has."""
    max_tokens: Annotated[int, Field(ge=1, le=256)] = 40
    batch_size: Annotated[int, Field(ge=1)] = 128
    seed: int = 0


@torch.no_grad()
def capfilt(
    model: BlipModel, tokenizer: TextTokenizer, samples: list[dict], image_root: Path, image_size: int, cfg: CapFiltConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], dict[str, float]]:
    """The bootstrapped samples and statistics: kept_original, kept_synthetic (fractions of images), and with
    marked noise, noise_removed (wrong originals dropped) and clean_kept (true originals kept)."""
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed)
    kept: list[dict] = []
    originals, synthetics = [], []
    for start in range(0, len(samples), cfg.batch_size):
        chunk = samples[start : start + cfg.batch_size]
        pixels = torch.stack([load_image(resolve_image(image_root, s["image"]), image_size) for s in chunk])
        features = model.image_features(pixels)  # the captioner and the filter both read them
        written = [tokenizer.decode(ids).strip() for ids in captions_from_features(
            model, features, tokenizer.eos_id, tokenizer.pad_id, min(cfg.max_tokens, model.max_text_len - 1), cfg.top_p, generator)]
        given = [s["conversations"][1]["value"] for s in chunk]
        logits = model.match_logits(torch.cat([features, features]), *encode_texts(tokenizer, given + written, model.max_text_len))
        scores = logits.softmax(dim=-1)[:, 1]
        keep_given, keep_written = (scores[: len(chunk)] >= cfg.threshold).tolist(), (scores[len(chunk) :] >= cfg.threshold).tolist()
        for sample, text, keep_a, keep_b in zip(chunk, written, keep_given, keep_written):
            if keep_a:
                kept.append(_without_negatives(sample))
            if keep_b and text:
                kept.append(_with_caption(sample, text))
        originals += keep_given
        synthetics += [k and bool(t) for k, t in zip(keep_written, written)]
        if progress is not None:
            progress(min(start + cfg.batch_size, len(samples)), len(samples))
    return kept, _statistics(samples, originals, synthetics)


def _without_negatives(sample: dict) -> dict:
    """A kept original: its one-detail negatives and regions go, since synthetic samples have none
    (a contrastive dataset uses negatives only when every sample has them)."""
    return {k: v for k, v in sample.items() if k not in ("hard_negatives", "regions")}


def _with_caption(sample: dict, text: str) -> dict:
    out = _without_negatives(sample)
    out["id"] = f"{sample.get('id', '')}{SYNTHETIC_SUFFIX}"
    out["conversations"] = [sample["conversations"][0], {"from": "gpt", "value": text}]
    out.pop("caption_noisy", None)
    out["caption_synthetic"] = True
    return out


def _statistics(samples: list[dict], originals: list[bool], synthetics: list[bool]) -> dict[str, float]:
    n = max(len(samples), 1)
    stats = {"kept_original": sum(originals) / n, "kept_synthetic": sum(synthetics) / n, "images": float(len(samples))}
    noisy = [bool(s.get("caption_noisy")) for s in samples]
    if any(noisy) and not all(noisy):
        stats["noise_removed"] = sum(not k for k, bad in zip(originals, noisy) if bad) / sum(noisy)
        stats["clean_kept"] = sum(k for k, bad in zip(originals, noisy) if not bad) / (len(noisy) - sum(noisy))
    return stats
