"""Evaluation figures a person would rather see than read: DRESS's answers round by round, VILA's text-only skill,
KOSMOS-2.5's reading, OFA's tasks side by side and a generator's samples by guidance scale.

Pure functions from a version's evaluation metrics to chart rows; the Models page draws them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_ROUND = re.compile(r"^feedback_em_round(\d+)$")
_SCALE = re.compile(r"^generation_accuracy_g(\d+(?:p\d+)?)$")


def feedback_rounds(metrics: Mapping[str, float]) -> list[dict[str, float | int]]:
    """One row per round of feedback (0: before any): VQA exact match of the model and, when it was
    evaluated too, of the reference model (before feedback training)."""
    rounds = sorted(int(m[1]) for key in metrics if (m := _ROUND.match(key)))
    rows = []
    for r in rounds:
        row: dict[str, float | int] = {"round": r, "this model": metrics[f"feedback_em_round{r}"]}
        if f"feedback_em_round{r}_reference" in metrics:
            row["before feedback training"] = metrics[f"feedback_em_round{r}_reference"]
        rows.append(row)
    return rows


def guidance_bars(metrics: Mapping[str, float]) -> list[dict[str, float | str]]:
    """A generator's samples judged right (mean over the judged attributes) at each guidance scale, beside the judge's
    accuracy on real test videos (the ceiling) and, where measured, on their autoencoder reconstructions (the most a
    decoded sample can show); empty for models that generate nothing."""
    scales = sorted((float(m[1].replace("p", ".")), key) for key in metrics if (m := _SCALE.match(key)))
    reconstructed = {"reconstructed videos": metrics["reconstructed_accuracy"]} if "reconstructed_accuracy" in metrics else {}
    return [{"guidance": f"{scale:g}", "samples": metrics[key], "real videos": metrics.get("real_accuracy", float("nan"))} | reconstructed
            for scale, key in scales]


def text_only_bars(metrics: Mapping[str, float]) -> list[dict[str, float | str]]:
    """Text-only exact match (questions answered from the scene's caption, no image) of the model and of
    its text-only LM, overall and per question type; empty when the evaluation did not ask."""
    if "text_only_exact_match" not in metrics:
        return []
    kinds = sorted(key.removeprefix("text_only_em_") for key in metrics if key.startswith("text_only_em_") and not key.endswith("_reference"))
    rows = []
    for name, key in [("all", "text_only_exact_match"), *((kind, f"text_only_em_{kind}") for kind in kinds)]:
        rows.append({"questions": name, "this model": metrics[key], "text-only LM": metrics.get(f"{key}_reference", float("nan"))})
    return rows


READING_BARS = {
    "OCR words (F1)": "ocr_word_f1", "OCR blocks, text and box (F1)": "ocr_block_f1",
    "markdown pages exact": "md_exact_match", "markdown 1 - edit distance": "md_ned_score", "markdown lines (F1)": "md_line_f1",
}
OFA_TASK_BARS = {
    "VQA exact match": "vqa_exact_match", "grounding IoU >= 0.5": "grounding_iou50",
    "captions exact": "caption_exact_match", "infilled codes right": "infill_code_accuracy",
}


def reading_bars(metrics: Mapping[str, float]) -> list[dict[str, float | str]]:
    """A page reader's figures (KOSMOS-2.5), one row each; empty for a model that reads no pages."""
    return _bars(metrics, READING_BARS, "ocr_word_f1")


def ofa_task_bars(metrics: Mapping[str, float]) -> list[dict[str, float | str]]:
    """OFA's figure for each kind of instruction, one row each; empty for other models."""
    return _bars(metrics, OFA_TASK_BARS, "caption_exact_match")


def _bars(metrics: Mapping[str, float], names: Mapping[str, str], marker: str) -> list[dict[str, float | str]]:
    if marker not in metrics:
        return []
    return [{"figure": label, "value": metrics[key]} for label, key in names.items() if key in metrics]


@dataclass(frozen=True)
class Chart:
    """A chart of the Models page: its rows from a version's metrics (none: not drawn), its words, its index column;
    horizontal bars for a list of figures, grouped vertical bars for series side by side."""

    rows: Callable[[Mapping[str, float]], list[dict]]
    title: str
    caption: str
    index: str
    horizontal: bool = False


CHARTS = (
    Chart(feedback_rounds, "Answers after feedback", "VQA exact match as the critic's feedback comes in, round by round (round 0: before any)", "round"),
    Chart(text_only_bars, "Text-only answers",
          "The test questions asked with no image, after the scene's caption: what multimodal training kept of the LM's text skill", "questions"),
    Chart(reading_bars, "Reading text pages", "Every test page read by both task prompts: <ocr> text blocks with their boxes, <md> markdown",
          "figure", horizontal=True),
    Chart(guidance_bars, "Samples by guidance scale",
          "How often the judge reads in a sample what its caption asked (colour, shape, size, motion), per classifier-free guidance scale;"
          " real videos: the judge on the real test videos; reconstructed: on them through the autoencoder and back", "guidance"),
    Chart(ofa_task_bars, "Instruction tasks",
          "One encoder-decoder, each kind of instruction scored on the test split (the infilling preview is in the run's evaluation artifacts)",
          "figure", horizontal=True),
)
