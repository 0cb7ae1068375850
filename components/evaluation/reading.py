"""KOSMOS-2.5's evaluation: every test page read by both task prompts, scored against the page.

`<ocr>` (spatially-aware text blocks): the words of all blocks against the page's words (precision,
recall, F1 over the multiset, as OCR benchmarks count words), and the blocks themselves: a block is
right when its text is a true block's and its box overlaps that block's at IoU >= 0.5. With location
tokens, the true boxes are read through the same grid, so a box is right when it names the true cells.
`<md>` (markdown): whole pages right, one minus the normalised edit distance (KOSMOS-2.5's NED) averaged
over pages, and the lines right (prefix and text) over the multiset of lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from components.data.conversation import encode_prompt
from components.data.llava_images import ImageProcessor
from components.data.llava_json import load_llava_json, resolve_image
from components.data.location_tokens import LocationGrid
from components.data.shapes_annotations import BOX_SCALE, box_iou
from components.data.tokenizer import TextTokenizer
from components.inference.answer import AnsweringModel, answer_prompts

BLOCK_IOU = 0.5
_TEXT_BOX = re.compile(r"^\s*\[\[(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})\]\]")

Block = tuple[tuple[float, float, float, float] | None, str]


def read_pages(
    model: AnsweringModel, tokenizer: TextTokenizer, reading_json: Path, image_root: Path, image_size: int,
    batch_size: int = 64, max_new_tokens: int = 96, limit: int | None = None,
    progress: Callable[[int, int], None] | None = None, grid: LocationGrid | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Answer every reading sample (both tasks of the first `limit` pages) greedily and score the answers."""
    samples = load_llava_json(reading_json)
    if limit is not None:
        pages = set(list(dict.fromkeys(s["image"] for s in samples))[:limit])
        samples = [s for s in samples if s["image"] in pages]
    if not samples:
        raise ValueError(f"{reading_json} holds no reading samples")
    processor = ImageProcessor(image_size)
    loaded = {path: processor(resolve_image(image_root, path)) for path in {s["image"] for s in samples}}
    prompts = [encode_prompt([], s["conversations"][0]["value"], tokenizer) for s in samples]
    answers = answer_prompts(model, tokenizer, prompts, [loaded[s["image"]] for s in samples], processor,
                             batch_size, max_new_tokens, progress)
    return score_reading(samples, answers, grid)


def score_reading(samples: Sequence[dict], answers: Sequence[str], grid: LocationGrid | None = None) -> tuple[dict[str, float], list[dict]]:
    """The module's metrics for `answers` to reading `samples` (their `task` and `page`)."""
    words, blocks, lines = _Counts(), _Counts(), _Counts()
    md_exact, md_ned, predictions = [], [], []
    for sample, answer in zip(samples, answers):
        page = sample["page"]
        if sample["task"] == "ocr":
            predicted = parse_blocks(answer, grid)
            truth = [(_truth_box(b["box"], page["size"], grid), b["text"]) for b in page["blocks"]]
            words.add(Counter(w for _, text in predicted for w in text.split()), Counter(w for _, text in truth for w in text.split()))
            blocks.add_matched(_matched_blocks(predicted, truth), len(predicted), len(truth))
        elif sample["task"] == "md":
            true_md = sample["conversations"][1]["value"]
            md_exact.append(float(answer.strip() == true_md.strip()))
            md_ned.append(1.0 - normalised_edit_distance(answer.strip(), true_md.strip()))
            lines.add(Counter(_lines(answer)), Counter(_lines(true_md)))
        else:
            raise ValueError(f"reading sample {sample.get('id')!r}: unknown task {sample['task']!r} (allowed: ocr, md)")
        predictions.append({"id": sample.get("id"), "task": sample["task"], "answer": sample["conversations"][1]["value"], "prediction": answer})
    metrics: dict[str, float] = {}
    if words.predicted or words.true:
        metrics |= words.metrics("ocr_word") | blocks.metrics("ocr_block")
    if md_exact:
        metrics |= {"md_exact_match": sum(md_exact) / len(md_exact), "md_ned_score": sum(md_ned) / len(md_ned)}
        metrics["md_line_f1"] = lines.metrics("md_line")["md_line_f1"]
        metrics["md_items"] = float(len(md_exact))
    return metrics, predictions


def parse_blocks(answer: str, grid: LocationGrid | None = None) -> list[Block]:
    """An <ocr> answer's blocks, one per non-empty line: (normalised box or None, text)."""
    blocks: list[Block] = []
    for line in answer.splitlines():
        if not line.strip():
            continue
        if grid is not None:
            text, entities = grid.read(line)
            box = entities[0][1][0] if entities else None
        elif match := _TEXT_BOX.match(line):
            x0, y0, x1, y1 = (int(v) / BOX_SCALE for v in match.groups())
            box, text = ((x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None), line[match.end():]
        else:
            box, text = None, line
        blocks.append((box, " ".join(text.split())))
    return blocks


def normalised_edit_distance(a: str, b: str) -> float:
    """Levenshtein distance over characters, divided by the longer string's length (0 for two empty strings)."""
    if not a and not b:
        return 0.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(a), len(b))


def _truth_box(pixel_box: Sequence[int], size: int, grid: LocationGrid | None) -> tuple[float, float, float, float]:
    box = tuple(v / size for v in pixel_box)
    return grid.box(*grid.cells(box)) if grid is not None else box


def _matched_blocks(predicted: list[Block], truth: list[Block]) -> int:
    unmatched = list(truth)
    matched = 0
    for box, text in predicted:
        for k, (true_box, true_text) in enumerate(unmatched):
            if text == true_text and box is not None and box_iou(box, true_box) >= BLOCK_IOU:
                matched += 1
                del unmatched[k]
                break
    return matched


def _lines(markdown: str) -> list[str]:
    return [" ".join(line.split()) for line in markdown.splitlines() if line.strip()]


class _Counts:
    """Micro-averaged precision, recall and F1 of predicted against true items, summed over pages."""

    def __init__(self) -> None:
        self.matched = self.predicted = self.true = 0

    def add(self, predicted: Counter, true: Counter) -> None:
        self.add_matched(sum((predicted & true).values()), sum(predicted.values()), sum(true.values()))

    def add_matched(self, matched: int, predicted: int, true: int) -> None:
        self.matched += matched
        self.predicted += predicted
        self.true += true

    def metrics(self, prefix: str) -> dict[str, float]:
        precision = self.matched / self.predicted if self.predicted else 0.0
        recall = self.matched / self.true if self.true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {f"{prefix}_precision": precision, f"{prefix}_recall": recall, f"{prefix}_f1": f1}
