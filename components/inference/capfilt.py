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
from dataclasses import dataclass
from pathlib import Path

import torch

from components.data.llava_json import load_image, resolve_image
from components.data.tokenizer import TextTokenizer
from components.inference.captioning import match_probability, write_captions
from components.models.blip import BlipModel

SYNTHETIC_SUFFIX = "-capfilt"


@dataclass(frozen=True)
class CapFiltConfig:
    top_p: float = 0.9
    """The captioner's nucleus (BLIP: 0.9)."""
    threshold: float = 0.5
    """The least ITM match probability a kept caption has."""
    max_tokens: int = 40
    batch_size: int = 128
    seed: int = 0


def _encode(tokenizer: TextTokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = [tokenizer.encode(t)[: max_len - 1] + [tokenizer.eos_id] for t in texts]
    width = max(map(len, encoded))
    ids = torch.full((len(encoded), width), tokenizer.pad_id, dtype=torch.long)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq)
    return ids, (ids != tokenizer.pad_id).long()


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
        written = [tokenizer.decode(ids).strip() for ids in write_captions(
            model, pixels, tokenizer.eos_id, tokenizer.pad_id, min(cfg.max_tokens, model.max_text_len - 1), cfg.top_p, generator)]
        given = [s["conversations"][1]["value"] for s in chunk]
        scores = match_probability(model, torch.cat([pixels, pixels]), *_encode(tokenizer, given + written, model.max_text_len))
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
