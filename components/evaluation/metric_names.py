"""The names of the metrics a pipeline's evaluation logs, by what the output model does.

A promotion gate can only judge metrics the evaluation produces; the recipe
checks its gate against these names before anything runs, so a gate on a
metric the model never reports is an error, not a model that never promotes.
"""

from __future__ import annotations

import re

RECALL_AT = (1, 5, 10)

CONTRASTIVE_METRICS = (
    "zero_shot_accuracy",
    *(f"{d}_r{k}{s}" for s in ("", "_itc") for d in ("i2t", "t2i") for k in RECALL_AT),
)
"""Zero-shot classification and retrieval recall at k, image to text and text to image; `_itc`: by the
embeddings alone, logged beside the re-ranked figures of a model with a match head (BLIP)."""

READING_METRICS = (
    "ocr_word_precision", "ocr_word_recall", "ocr_word_f1", "ocr_block_precision", "ocr_block_recall", "ocr_block_f1",
    "md_exact_match", "md_ned_score", "md_line_f1",
)
"""A page reader's (KOSMOS-2.5): the words of its text blocks against the page's, the blocks right in text and box,
and its markdown: whole pages right, one minus the normalised edit distance, and the lines right (prefix and text)."""
OFA_METRICS = ("caption_exact_match", "infill_code_accuracy", "infill_mse", "infill_mse_tokenizer")
"""OFA's captions (exact match against the scene's) and image infilling (codes right, the decoded middle's pixel error,
and the image tokenizer's own error on the real codes, its floor)."""
ANSWER_METRICS = (
    "vqa_exact_match", "vqa_em_<question type>", "grounding_iou50", "grounding_mean_iou", "<any of these>_0shot",
    "text_only_exact_match", "text_only_em_<question type>", "text_only_exact_match_reference", "text_only_retained",
    "text_only_degradation", "feedback_em_round<r>", "feedback_em_<question type>_round<r>", "feedback_iou50_round<r>",
    "feedback_gain", "feedback_fixed_round<r>", "feedback_broken_round<r>", "<any feedback metric>_reference",
    "grounded_recall", "grounded_phrase_recall", "grounded_precision", *READING_METRICS, *OFA_METRICS,
)
"""VQA exact match (overall and per question type), grounding; with few-shot evaluation also zero-shot;
with evaluation.text_only_reference the same questions answered from the caption alone (VILA), by the
output model and by the reference stage's LM, the fraction of the reference's exact match retained, and
the points lost (reference minus output); with evaluation.feedback_rounds the answers round by round as
the critic's feedback comes in (DRESS), and with evaluation.feedback_reference the same for that stage;
for a model that writes location tokens (KOSMOS-2), its grounded captions scored against the scene."""

GROUNDED_CAPTION_METRICS = ("grounded_recall", "grounded_phrase_recall", "grounded_precision")
_ANSWER_METRIC = re.compile(r"^(vqa_exact_match|vqa_em_[a-z0-9_]+|grounding_iou50|grounding_mean_iou)$")
_FEEDBACK_METRIC = re.compile(r"^feedback_((em|em_[a-z0-9_]+|iou50|fixed|broken)_round\d|gain)(_reference)?$")
_TEXT_ONLY_METRIC = re.compile(r"^text_only_(exact_match|em_[a-z0-9_]+|grounding_iou50|grounding_mean_iou)(_reference)?$|^text_only_(retained|degradation)$")


def is_answer_metric(name: str) -> bool:
    return bool(_ANSWER_METRIC.match(name.removesuffix("_0shot")) or _TEXT_ONLY_METRIC.match(name) or _FEEDBACK_METRIC.match(name) or name in GROUNDED_CAPTION_METRICS or name in READING_METRICS or name in OFA_METRICS)


def is_contrastive_metric(name: str) -> bool:
    return name in CONTRASTIVE_METRICS


GENERATION_METRICS = (
    "denoise_loss", "denoise_loss_t<t>", "real_accuracy", "real_<attribute>_accuracy", "reconstructed_accuracy",
    "reconstructed_<attribute>_accuracy", "generation_accuracy_g<scale>",
    "generation_<attribute>_accuracy_g<scale>", "generation_accuracy", "generation_ratio", "guidance_gain",
)
"""A text-to-video model's: the held-out denoising loss (mean, and at each fixed timestep); the judge's accuracy on real
test videos (the ceiling; attributes colour, shape, size, motion) and on their autoencoder reconstructions; its samples' per guidance scale (scale 2.5 is
g2p5); the best scale's accuracy, that over the ceiling, and the best guided scale's gain over scale 1."""
_GENERATION_METRIC = re.compile(
    r"^(denoise_loss(_t\d+)?|(real|reconstructed)_accuracy|(real|reconstructed)_(colour|shape|size|motion)_accuracy|generation_((colour|shape|size|motion)_)?accuracy_g\d+(p\d+)?"
    r"|generation_accuracy|generation_ratio|guidance_gain)$"
)


def scale_tag(scale: float) -> str:
    """A guidance scale as a metric suffix: 1 -> 'g1', 2.5 -> 'g2p5'."""
    return "g" + f"{scale:g}".replace(".", "p")


def is_generation_metric(name: str) -> bool:
    return bool(_GENERATION_METRIC.match(name))
