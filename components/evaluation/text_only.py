"""What a multimodal model still does with text alone: questions about a scene answered from its caption.

VILA's claim is that training a language model on images erodes what it could do
with text, and that text-only data in the mix repairs it. The text-only skill the
Shapes world can test is the one its LM pretrains on (`text_corpus: described`):
read a scene's caption, then answer questions about that scene, with no image at
all. Each test question is asked as that corpus writes it, [bos] ' {caption}' [eos]
and the earlier turns, then the question with its `<image>` removed; answers are
scored as VQA answers are, and the metrics carry the prefix `text_only_`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from components.data.conversation import answer_ids, prompt_ids, strip_image_token
from components.data.llava_images import ImageProcessor
from components.data.llava_json import captions_by_image, load_llava_json
from components.data.tokenizer import TextTokenizer
from components.evaluation.llava_eval import EvalItem, score
from components.inference.answer import AnsweringModel, answer_prompts

PREFIX = "text_only_"


def described_items(instruct_json: Path, captions_json: Path, tokenizer: TextTokenizer, limit: int | None = None) -> tuple[list[EvalItem], list[list[int]]]:
    """One item per answer turn of a conversation whose image has a caption, and its text-only prompt."""
    captions = captions_by_image(captions_json)
    items, prompts = [], []
    for sample in load_llava_json(instruct_json)[:limit]:
        caption = captions.get(sample.get("image"))
        if caption is None:
            continue
        turns = sample["conversations"]
        types = sample.get("question_types") or ["vqa"] * (len(turns) // 2)
        context = [tokenizer.bos_id] + answer_ids(caption, tokenizer)
        for k in range(0, len(turns) - 1, 2):
            question, answer = strip_image_token(turns[k]["value"]), turns[k + 1]["value"]
            items.append(EvalItem(str(sample.get("id", len(items))), None, (), question, answer, types[k // 2]))
            asked = context + prompt_ids(question, tokenizer)
            prompts.append(asked)
            context = asked + answer_ids(answer, tokenizer)
    return items, prompts


def evaluate_text_only(
    model: AnsweringModel, tokenizer: TextTokenizer, instruct_json: Path, captions_json: Path, image_size: int,
    batch_size: int = 64, max_new_tokens: int = 24, limit: int | None = None, progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """`text_only_exact_match`, `text_only_em_<type>` (and grounding) from greedy answers to text-only prompts."""
    items, prompts = described_items(instruct_json, captions_json, tokenizer, limit)
    if not items:
        raise ValueError(f"text-only evaluation found no conversation in {instruct_json} whose image {captions_json} describes")
    answers = answer_prompts(model, tokenizer, prompts, [None] * len(prompts), ImageProcessor(image_size), batch_size, max_new_tokens, progress)
    metrics = {PREFIX + key.replace("vqa_", "", 1): value for key, value in score(items, answers).items()}
    predictions = [{"id": it.sample_id, "type": it.question_type, "question": it.question, "answer": it.answer, "prediction": a}
                   for it, a in zip(items, answers)]
    return metrics, predictions
