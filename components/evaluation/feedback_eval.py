"""DRESS's multi-turn evaluation: how much the answers improve once the critic's feedback is heard.

`feedback_em_round{r}`: VQA exact match of round r's answers (round 0: before any
feedback), per question type for the last round, and `feedback_iou50_round{r}` for boxes;
`feedback_gain`: the last round's exact match minus round 0's; `feedback_fixed_round{r}`:
of the answers the critic found wrong in round 0, the fraction right in round r;
`feedback_broken_round{r}`: of those it found right, the fraction wrong in round r.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.evaluation.llava_eval import score
from components.inference.feedback import Exchange


def feedback_metrics(exchanges: Sequence[Exchange]) -> dict[str, float]:
    if not exchanges:
        raise ValueError("feedback evaluation needs at least one exchange")
    items = [ex.item for ex in exchanges]
    rounds = len(exchanges[0].answers)
    metrics: dict[str, float] = {}
    for r in range(rounds):
        scored = score(items, [ex.answers[r] for ex in exchanges])
        for key, value in scored.items():
            if key.endswith("_items") or key == "grounding_mean_iou" or (key.startswith("vqa_em_") and r != rounds - 1):
                continue  # per question type: the last round only (round 0's are the vqa_em_* figures)
            name = {"vqa_exact_match": "em", "grounding_iou50": "iou50"}.get(key, key.replace("vqa_em_", "em_"))
            metrics[f"feedback_{name}_round{r}"] = value
    if "feedback_em_round0" in metrics:
        metrics["feedback_gain"] = metrics[f"feedback_em_round{rounds - 1}"] - metrics["feedback_em_round0"]
    wrong = [ex for ex in exchanges if not ex.feedback[0].correct]
    right = [ex for ex in exchanges if ex.feedback[0].correct]
    for r in range(1, rounds):
        if wrong:
            metrics[f"feedback_fixed_round{r}"] = sum(ex.feedback[r].correct for ex in wrong) / len(wrong)
        if right:
            metrics[f"feedback_broken_round{r}"] = sum(not ex.feedback[r].correct for ex in right) / len(right)
    return metrics


def exchange_records(exchanges: Sequence[Exchange]) -> list[dict]:
    """The exchanges as a person reads them: question, truth, then each answer with its feedback."""
    return [
        {"id": ex.item.sample_id, "type": ex.item.question_type, "question": ex.item.question, "answer": ex.item.answer,
         "rounds": [{"prediction": a, "score": f.score, "feedback": f.as_turn()} for a, f in zip(ex.answers, ex.feedback)]}
        for ex in exchanges
    ]
