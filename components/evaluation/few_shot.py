"""Few-shot prompts (Flamingo): in-context examples before each test question.

Each example is one (image, question, answer) turn from the training split with
the same question type as the test question, chosen by a seeded draw per test
item, so a rerun asks exactly the same prompts. The prompt is
[bos] example_1 ... example_k query, every example written as the instruct
template writes a turn, each with its own `<image>`; the query is the test
item's conversation up to its question.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from components.data.conversation import answer_ids, encode_prompt, prompt_ids
from components.data.tokenizer import IMAGE_TOKEN, TextTokenizer


class Turn(Protocol):
    image: object
    history: tuple[tuple[str, str], ...]
    question: str
    answer: str
    question_type: str


def _with_image(question: str) -> str:
    return question if IMAGE_TOKEN in question else f"{IMAGE_TOKEN}\n{question}"


def example_pool(support: Sequence[Turn]) -> dict[str, list[Turn]]:
    """Single-turn examples with an image, by question type: the first turn of each conversation."""
    pool: dict[str, list[Turn]] = defaultdict(list)
    for turn in support:
        if turn.image is not None and not turn.history:
            pool[turn.question_type].append(turn)
    return pool


def choose_examples(pool: dict[str, list[Turn]], question_type: str, shots: int, seed: int) -> list[Turn]:
    candidates = pool.get(question_type) or [t for turns in pool.values() for t in turns]
    if len(candidates) < shots:
        raise ValueError(f"few-shot evaluation needs {shots} examples, the support split has {len(candidates)}")
    picked = np.random.default_rng(seed).choice(len(candidates), size=shots, replace=False)
    return [candidates[int(i)] for i in picked]


def few_shot_prompt(examples: Sequence[Turn], query: Turn, tokenizer: TextTokenizer) -> list[int]:
    """Token ids ending where the query's answer starts; images in order: the examples', then the query's."""
    ids = [tokenizer.bos_id]
    for example in examples:
        ids += prompt_ids(_with_image(example.question), tokenizer) + answer_ids(example.answer, tokenizer)
    history = list(query.history)
    question = query.question
    if query.image is not None:
        if history:
            history[0] = (_with_image(history[0][0]), history[0][1])
        else:
            question = _with_image(question)
    return ids + encode_prompt(history, question, tokenizer)[1:]  # the query's own bos dropped
