"""What OFA's evaluation adds to the answers' VQA and grounding: captions, and image infilling in image codes.

Captioning: the caption instruction for every test image, exact match against the scene's caption
(Shapes captions are a function of the scene: the objects left to right with their places).
Infilling: the middle of each test image masked, the model writes the middle's codes; scored by code
accuracy against the image tokenizer's codes of the real middle, and by the pixel error of the decoded
middle, beside the tokenizer's own error (its codes of the real image decoded: the floor). A preview shows,
per image: the image, the masked input, the tokenizer's reconstruction and the model's infilling.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from components.data.conversation import encode_prompt
from components.data.llava_images import ImageProcessor, collate_images
from components.data.llava_json import load_llava_json, resolve_image
from components.data.ofa_instructions import CAPTION_INSTRUCTION, INFILL_INSTRUCTION
from components.data.tokenizer import IMAGE_TOKEN, TextTokenizer
from components.evaluation.llava_eval import normalise_answer
from components.inference.answer import answer_prompts
from components.models.ofa import OfaModel, middle

PREVIEW_IMAGES = 8


def caption_metrics(
    model: OfaModel, tokenizer: TextTokenizer, captions_json: Path, image_root: Path, image_size: int,
    batch_size: int = 64, max_new_tokens: int = 48, limit: int | None = None, progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    samples = load_llava_json(captions_json)[:limit]
    processor = ImageProcessor(image_size)
    prompt = encode_prompt([], f"{IMAGE_TOKEN}\n{CAPTION_INSTRUCTION}", tokenizer)
    images = [processor(resolve_image(image_root, s["image"])) for s in samples]
    answers = answer_prompts(model, tokenizer, [prompt] * len(samples), images, processor, batch_size, max_new_tokens, progress)
    truths = [s["conversations"][1]["value"] for s in samples]
    hits = [normalise_answer(a) == normalise_answer(t) for a, t in zip(answers, truths)]
    records = [{"id": s.get("id"), "caption": t, "prediction": a} for s, t, a in zip(samples, truths, answers)]
    return {"caption_exact_match": sum(hits) / len(hits), "caption_items": float(len(hits))}, records


@torch.no_grad()
def infilling_metrics(
    model: OfaModel, tokenizer: TextTokenizer, captions_json: Path, image_root: Path, image_size: int,
    batch_size: int = 64, limit: int | None = None,
) -> tuple[dict[str, float], Image.Image]:
    if model.image_tokenizer is None:
        raise ValueError("infilling needs the model's image tokenizer (model.vq)")
    model.eval()
    samples = load_llava_json(captions_json)[:limit]
    processor = ImageProcessor(image_size)
    prompt = torch.tensor([encode_prompt([], f"{IMAGE_TOKEN}\n{INFILL_INSTRUCTION}", tokenizer)])
    hits = total = 0
    model_error = floor_error = 0.0
    preview: list[np.ndarray] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        pixels = collate_images([processor(resolve_image(image_root, s["image"])) for s in chunk])["pixel_values"]
        masked, truth = model.infill_batch(pixels)
        ids = prompt.expand(len(chunk), -1)
        written = model.generate(ids, torch.ones_like(ids), masked, torch.ones(len(chunk), dtype=torch.bool),
                                 max_new_tokens=truth.shape[1], eos_token_id=tokenizer.eos_id, codes=True)
        predicted = torch.tensor(written) + model.codes_offset
        hits += int((predicted == truth).sum())
        total += truth.numel()
        codes = model.image_tokenizer.encode(pixels)
        infilled = _with_middle(codes, predicted - model.codes_offset)
        real, ours = model.image_tokenizer.decode(codes), model.image_tokenizer.decode(infilled)
        inside = middle(pixels.shape[-1])
        model_error += float(((ours - pixels)[..., inside, inside] ** 2).mean()) * len(chunk)
        floor_error += float(((real - pixels)[..., inside, inside] ** 2).mean()) * len(chunk)
        for k in range(min(len(chunk), PREVIEW_IMAGES - len(preview))):
            preview.append(np.concatenate([_to_uint8(t[k]) for t in (pixels, masked, real, ours)], axis=1))
    metrics = {
        "infill_code_accuracy": hits / total,
        "infill_mse": model_error / len(samples),
        "infill_mse_tokenizer": floor_error / len(samples),
        "infill_items": float(len(samples)),
    }
    return metrics, Image.fromarray(np.concatenate(preview, axis=0))


def _with_middle(codes: torch.Tensor, written: torch.Tensor) -> torch.Tensor:
    h, w = codes.shape[1:]
    out = codes.clone()
    rows, cols = middle(h), middle(w)
    out[:, rows, cols] = written.view(len(codes), rows.stop - rows.start, cols.stop - cols.start)
    return out


def _to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(3, S, S) in [-1, 1] -> (S, S, 3) uint8."""
    return ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
