"""Evaluate a LLaVA model on held-out conversations: VQA exact match per question type, grounding IoU.

Each answer is generated greedily (KV cache) from the image, the earlier
turns of its conversation (ground truth) and the question, as a user of the
model would ask it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from components.data.conversation import encode_prompt
from components.data.grounded import BoxTokens, boxes_as_text
from components.data.llava_images import ImageProcessor
from components.data.llava_json import load_llava_json, resolve_image
from components.data.shapes_annotations import box_iou, parse_box
from components.data.tokenizer import TextTokenizer
from components.evaluation.few_shot import choose_examples, example_pool, few_shot_prompt
from components.inference.answer import AnsweringModel, answer_prompts
from components.models.anyres import Size

GROUNDING = "grounding"


@dataclass(frozen=True)
class EvalItem:
    sample_id: str
    image: Path | None
    history: tuple[tuple[str, str], ...]
    question: str
    answer: str
    question_type: str


def normalise_answer(text: str) -> str:
    return text.strip().lower().rstrip(".").strip()


def eval_items(json_path: Path, image_root: Path, limit: int | None = None) -> list[EvalItem]:
    """One item per answer turn, with the conversation's earlier turns as history."""
    samples = load_llava_json(json_path)[:limit]
    items = []
    for sample in samples:
        turns = sample["conversations"]
        types = sample.get("question_types") or ["vqa"] * (len(turns) // 2)
        image = resolve_image(image_root, sample["image"]) if sample.get("image") else None
        history: list[tuple[str, str]] = []
        for k in range(0, len(turns) - 1, 2):
            question, answer = turns[k]["value"], turns[k + 1]["value"]
            items.append(EvalItem(str(sample.get("id", len(items))), image, tuple(history), question, answer, types[k // 2]))
            history.append((question, answer))
    return items


def score(items: list[EvalItem], answers: list[str]) -> dict[str, float]:
    """VQA exact match overall and per type; grounding IoU@0.5 and mean IoU."""
    hits: dict[str, list[float]] = defaultdict(list)
    ious: list[float] = []
    for item, answer in zip(items, answers):
        if item.question_type == GROUNDING:
            predicted, truth = parse_box(answer), parse_box(item.answer)
            ious.append(box_iou(predicted, truth) if predicted and truth else 0.0)
        else:
            hits[item.question_type].append(float(normalise_answer(answer) == normalise_answer(item.answer)))
    metrics: dict[str, float] = {}
    every = [h for values in hits.values() for h in values]
    if every:
        metrics["vqa_exact_match"] = sum(every) / len(every)
        metrics["vqa_items"] = float(len(every))
    for kind, values in sorted(hits.items()):
        metrics[f"vqa_em_{kind}"] = sum(values) / len(values)
    if ious:
        metrics["grounding_iou50"] = sum(iou >= 0.5 for iou in ious) / len(ious)
        metrics["grounding_mean_iou"] = sum(ious) / len(ious)
        metrics["grounding_items"] = float(len(ious))
    return metrics


def evaluate_llava(
    model: AnsweringModel,
    tokenizer: TextTokenizer,
    json_path: Path,
    image_root: Path,
    image_size: int,
    batch_size: int = 64,
    max_new_tokens: int = 24,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    pinpoints: tuple[Size, ...] | None = None,
    few_shot: int = 0,
    support_json: Path | None = None,
    location_grid: BoxTokens | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """`pinpoints`: the model's any-resolution grids (LLaVA-1.6), else square input. `few_shot` > 0:
    that many examples from `support_json` (the train split) precede each question (Flamingo).
    `location_grid`: the model answers boxes in location tokens (KOSMOS-2's cells, OFA's bins), read back before scoring."""
    items = eval_items(json_path, image_root, limit)
    processor = ImageProcessor(image_size, pinpoints)
    if few_shot:
        if support_json is None:
            raise ValueError("few-shot evaluation needs support_json, the split the examples come from")
        prompts, images = _few_shot_inputs(items, eval_items(support_json, image_root), few_shot, tokenizer, processor)
    else:
        prompts = [encode_prompt(list(item.history), item.question, tokenizer) for item in items]
        loaded = {path: processor(path) for path in {it.image for it in items if it.image}}
        images = [loaded[it.image] if it.image else None for it in items]
    answers = answer_prompts(model, tokenizer, prompts, images, processor, batch_size, max_new_tokens, progress)
    if location_grid is not None:
        answers = [boxes_as_text(a, location_grid) if it.question_type == GROUNDING else a for it, a in zip(items, answers)]
    predictions = [
        {"id": it.sample_id, "type": it.question_type, "question": it.question, "answer": it.answer, "prediction": a}
        for it, a in zip(items, answers)
    ]
    return score(items, answers), predictions


def _few_shot_inputs(
    items: list[EvalItem], support: list[EvalItem], shots: int, tokenizer: TextTokenizer, processor: ImageProcessor
) -> tuple[list[list[int]], list[dict[str, torch.Tensor]]]:
    """Prompts with `shots` examples each, and their images stacked (shots + 1, 3, S, S), the query's last."""
    pool = example_pool(support)
    cache: dict[Path, torch.Tensor] = {}

    def pixels(path: Path | None) -> torch.Tensor:
        if path not in cache:
            cache[path] = processor(path)["pixel_values"]
        return cache[path]

    prompts, images = [], []
    for index, item in enumerate(items):
        examples = choose_examples(pool, item.question_type, shots, seed=index)
        prompts.append(few_shot_prompt(examples, item, tokenizer))
        media = [pixels(e.image) for e in examples] + ([pixels(item.image)] if item.image else [])
        images.append({"pixel_values": torch.stack(media)})
    return prompts, images
