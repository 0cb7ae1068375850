"""Answering with feedback (DRESS): answer, hear the critic, answer again, as many rounds as asked.

Round 0 is the ordinary answer to a question after its conversation's earlier turns
(ground truth). Every later round reads the whole exchange so far, each answer
followed by the critic's feedback on it as the user's next turn, and answers anew.
The same exchanges, with the true answer after the first feedback, are DRESS's
conditional fine-tuning data (`feedback_samples`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from components.data.conversation import encode_prompt
from components.data.llava_images import ImageProcessor
from components.data.tokenizer import TextTokenizer
from components.evaluation.critic import Feedback, critique
from components.evaluation.llava_eval import EvalItem
from components.inference.answer import AnsweringModel, answer_prompts


class FeedbackConfig(BaseModel):
    """DRESS's feedback data: which train conversations the model answers and hears the critic on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversations: Annotated[int, Field(ge=1)] = 4000
    """The first this many train conversations; every question of each is answered (after its earlier
    turns) and becomes one feedback sample."""
    rounds: Annotated[int, Field(ge=1, le=3)] = 2
    """Feedback turns per sample: the first on the model's own answer, each later one on the true answer
    given after it (full marks: keep it), so that a model evaluated over several rounds has heard that too."""
    batch_size: Annotated[int, Field(ge=1)] = 128
    max_new_tokens: Annotated[int, Field(ge=1, le=256)] = 24


@dataclass(frozen=True)
class Exchange:
    """One question, every round's answer and the critic's feedback on each."""

    item: EvalItem
    answers: tuple[str, ...]
    feedback: tuple[Feedback, ...]

    def turns(self) -> list[tuple[str, str]]:
        """The conversation up to the last answer: earlier turns, the question and answer, then each
        feedback and the answer after it."""
        asked = [self.item.question] + [f.as_turn() for f in self.feedback[:-1]]
        return [*self.item.history, *zip(asked, self.answers)]


def answer_with_feedback(
    model: AnsweringModel, tokenizer: TextTokenizer, items: Sequence[EvalItem], image_size: int, rounds: int,
    batch_size: int = 64, max_new_tokens: int = 24, progress: Callable[[int, int], None] | None = None,
) -> list[Exchange]:
    """Each item answered in round 0 and again after each of `rounds` feedback turns."""
    processor = ImageProcessor(image_size)
    loaded = {path: processor(path) for path in {it.image for it in items if it.image}}
    images = [loaded[it.image] if it.image else None for it in items]
    exchanges = [Exchange(it, (), ()) for it in items]
    for round_ in range(rounds + 1):
        prompts = [
            encode_prompt(list(it.history), it.question, tokenizer) if not round_
            else encode_prompt(ex.turns(), ex.feedback[-1].as_turn(), tokenizer)
            for it, ex in zip(items, exchanges)
        ]
        answers = answer_prompts(model, tokenizer, prompts, images, processor, batch_size, max_new_tokens, progress)
        exchanges = [
            Exchange(ex.item, ex.answers + (a,), ex.feedback + (critique(ex.item.question_type, a, ex.item.answer),))
            for ex, a in zip(exchanges, answers)
        ]
    return exchanges


def feedback_samples(exchanges: Sequence[Exchange], image_of: Callable[[EvalItem], str | None], rounds: int = 1) -> list[dict]:
    """LLaVA-JSON samples of DRESS's conditional fine-tuning: earlier turns, the question, the model's first
    answer, the critic's feedback on it (score, critique, refinement), then the true answer; with `rounds` > 1
    each further round is the critic's feedback on the true answer (full marks) and the true answer again.
    The true answers are the targets (`context_turns`: every answer before the first of them is context).
    `image_of`: the item's image as the JSON writes it."""
    samples = []
    for number, ex in enumerate(exchanges):
        truth = ex.item.answer
        keep = critique(ex.item.question_type, truth, truth).as_turn()
        turns = [*ex.item.history, (ex.item.question, ex.answers[0]), (ex.feedback[0].as_turn(), truth)]
        turns += [(keep, truth)] * (rounds - 1)
        samples.append({
            "id": f"{ex.item.sample_id}-feedback-{number}",
            **({"image": image_of(ex.item)} if ex.item.image else {}),
            "conversations": [{"from": role, "value": text} for q, a in turns for role, text in (("human", q), ("gpt", a))],
            "question_type": ex.item.question_type,
            "context_turns": len(ex.item.history) + 1,
            "feedback_score": ex.feedback[0].score,
        })
    return samples
