"""KOSMOS-2's grounded captioning, scored against the scene: are the phrases it names there, and are their boxes?

Each test image is asked for a grounded caption (`<grounding>`). A true region (the
caption phrase of an object and its box) is found when the caption names that
phrase and a box of the phrase overlaps the object's at IoU >= 0.5:
`grounded_recall` over the true regions, `grounded_precision` over the phrases the
model located, `grounded_phrase_recall` for the phrases alone, boxes aside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from components.data.conversation import encode_prompt
from components.data.grounded import CAPTION_QUESTION
from components.data.llava_images import ImageProcessor
from components.data.llava_json import load_llava_json, resolve_image
from components.data.location_tokens import LocationGrid
from components.data.shapes_annotations import box_iou
from components.data.tokenizer import IMAGE_TOKEN, TextTokenizer
from components.inference.answer import AnsweringModel, answer_prompts

GROUNDED = 0.5


def grounded_caption_metrics(
    model: AnsweringModel, tokenizer: TextTokenizer, grid: LocationGrid, captions_json: Path, image_root: Path, image_size: int,
    batch_size: int = 64, max_new_tokens: int = 96, limit: int | None = None, progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    samples = [s for s in load_llava_json(captions_json)[:limit] if s.get("image") and s.get("regions")]
    if not samples:
        raise ValueError(f"grounded captioning needs captions with regions; {captions_json} has none")
    processor = ImageProcessor(image_size)
    prompt = encode_prompt([], f"{IMAGE_TOKEN}\n{CAPTION_QUESTION}", tokenizer)
    images = [processor(resolve_image(image_root, s["image"])) for s in samples]
    answers = answer_prompts(model, tokenizer, [prompt] * len(samples), images, processor, batch_size, max_new_tokens, progress)
    return score_grounded_captions(samples, answers, grid)


def score_grounded_captions(samples: list[dict], answers: list[str], grid: LocationGrid) -> tuple[dict[str, float], list[dict]]:
    """The metrics of the module's docstring for each sample's grounded caption `answers` (location tokens)."""
    found = named = regions = located = correct = 0
    predictions = []
    for sample, answer in zip(samples, answers):
        text, entities = grid.read(answer)
        boxes: dict[str, list] = {}
        for phrase, located_boxes in entities:
            boxes.setdefault(_normal(phrase), []).extend(located_boxes)
        truth = [(_normal(r["phrase"]), r["box"]) for r in sample["regions"]]
        regions += len(truth)
        named += sum(phrase in boxes for phrase, _ in truth)
        hit = [any(box_iou(b, box) >= GROUNDED for b in boxes.get(phrase, [])) for phrase, box in truth]
        found += sum(hit)
        for phrase, located_boxes in boxes.items():
            located += len(located_boxes)
            correct += sum(any(p == phrase and box_iou(b, box) >= GROUNDED for p, box in truth) for b in located_boxes)
        predictions.append({"id": sample.get("id"), "caption": text, "prediction": answer, "regions_found": sum(hit), "regions": len(truth)})
    metrics = {
        "grounded_recall": found / regions,
        "grounded_phrase_recall": named / regions,
        "grounded_precision": correct / located if located else 0.0,
        "grounded_items": float(len(samples)),
    }
    return metrics, predictions


def _normal(phrase: str) -> str:
    return " ".join(phrase.lower().split())
