"""LLaVA samples -> token ids and loss labels, following LLaVA's two templates.

caption  (stage 1, LLaVA's "plain" template): the human prompt is dropped;
         [bos] <image> " caption" [eos], and only the caption and eos are targets.
instruct (stage 2, a Vicuna-style template without system prompt):
         [bos] then per turn  "USER: {question} ASSISTANT:"  " {answer}" [eos];
         only the answers and their eos are targets.

Labels are aligned with input_ids (the model shifts them), and IGNORE_INDEX marks
positions that are not predicted. The image is one `<image>` id in the sequence;
the model swaps it for the image's patch embeddings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from components.data.errors import DataError
from components.data.tokenizer import IMAGE_TOKEN, TextTokenizer

IGNORE_INDEX = -100
ConversationMode = Literal["caption", "instruct"]
CONVERSATION_MODES: tuple[str, ...] = ("caption", "instruct")


def prompt_ids(question: str, tokenizer: TextTokenizer) -> list[int]:
    """The masked half of a turn: 'USER: {question} ASSISTANT:'."""
    return tokenizer.encode(f"USER: {question} ASSISTANT:")


def answer_ids(answer: str, tokenizer: TextTokenizer) -> list[int]:
    """The target half of a turn: ' {answer}' followed by eos."""
    return tokenizer.encode(" " + answer) + [tokenizer.eos_id]


def _describe(sample: dict) -> str:
    return f"sample id={sample.get('id', '<no id>')!r}"


def _turn_pairs(sample: dict) -> list[tuple[str, str]]:
    """(human, gpt) pairs of a conversation that alternates human, gpt, human, gpt..."""
    turns = sample.get("conversations")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        raise DataError(
            f"{_describe(sample)}: 'conversations' must be a non-empty list of "
            "human/gpt pairs; validate the file with load_llava_json first"
        )
    pairs = []
    for i in range(0, len(turns), 2):
        human, gpt = turns[i], turns[i + 1]
        if human.get("from") != "human" or gpt.get("from") != "gpt":
            raise DataError(
                f"{_describe(sample)}: conversations[{i}:{i + 2}] are "
                f"{human.get('from')!r}, {gpt.get('from')!r}; expected 'human', 'gpt'"
            )
        pairs.append((str(human["value"]), str(gpt["value"])))
    return pairs


def normalised_turns(sample: dict) -> list[tuple[str, str]]:
    """The (question, answer) pairs with `<image>` placed as LLaVA places it: an image
    sample has exactly one `<image>`, followed by a newline at the start of the question
    that held it (the first question when the text had none); a sample without image
    has none."""
    pairs = _turn_pairs(sample)
    has_image = sample.get("image") is not None
    in_questions = sum(q.count(IMAGE_TOKEN) for q, _ in pairs)
    in_answers = sum(a.count(IMAGE_TOKEN) for _, a in pairs)
    if in_answers:
        raise DataError(f"{_describe(sample)}: an answer (gpt turn) contains {IMAGE_TOKEN}")
    if not has_image:
        if in_questions:
            raise DataError(
                f"{_describe(sample)} has no 'image' but its text contains {IMAGE_TOKEN}; "
                "add the image or remove the token"
            )
        return pairs
    if in_questions > 1:
        raise DataError(
            f"{_describe(sample)}: {IMAGE_TOKEN} occurs {in_questions} times; "
            "one image per sample is supported"
        )
    if in_questions == 0:  # LLaVA prepends the missing token to the first question
        return [(f"{IMAGE_TOKEN}\n{pairs[0][0]}", pairs[0][1])] + pairs[1:]
    # Like LLaVA, move the token to the start of the question that holds it.
    return [
        (f"{IMAGE_TOKEN}\n{q.replace(IMAGE_TOKEN, '').strip()}" if IMAGE_TOKEN in q else q, a)
        for q, a in pairs
    ]


def encode_sample(
    sample: dict, tokenizer: TextTokenizer, mode: ConversationMode, max_len: int
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one LLaVA sample, cut to at most max_len ids.

    Raises DataError when the cut would drop the image token, or for a caption-mode
    sample without image.
    """
    if max_len < 2:
        raise DataError(f"max_len={max_len} is too small; it must be at least 2")
    if mode == "caption":
        ids, labels = _encode_caption(sample, tokenizer)
    elif mode == "instruct":
        ids, labels = _encode_instruct(sample, tokenizer)
    else:
        raise DataError(f"unknown conversation mode {mode!r}; allowed: {list(CONVERSATION_MODES)}")
    if len(ids) > max_len:
        if tokenizer.image_id in ids and ids.index(tokenizer.image_id) >= max_len:
            raise DataError(
                f"{_describe(sample)}: max_len={max_len} would cut off the image token at "
                f"position {ids.index(tokenizer.image_id)}; raise max_len or shorten the text"
            )
        ids, labels = ids[:max_len], labels[:max_len]
    return ids, labels


def _encode_caption(sample: dict, tokenizer: TextTokenizer) -> tuple[list[int], list[int]]:
    if sample.get("image") is None:
        raise DataError(f"{_describe(sample)}: caption mode needs an image, the sample has none")
    caption = _turn_pairs(sample)[0][1]
    if IMAGE_TOKEN in caption:
        raise DataError(f"{_describe(sample)}: the caption contains {IMAGE_TOKEN}")
    targets = answer_ids(caption, tokenizer)
    ids = [tokenizer.bos_id, tokenizer.image_id] + targets
    return ids, [IGNORE_INDEX, IGNORE_INDEX] + targets


def _encode_instruct(sample: dict, tokenizer: TextTokenizer) -> tuple[list[int], list[int]]:
    """Every answer is a target but the first `context_turns` (a sample field, default 0): answers the model
    reads and is not trained to give, such as the wrong answer a feedback turn is about (DRESS)."""
    ids, labels = [tokenizer.bos_id], [IGNORE_INDEX]
    context = sample.get("context_turns", 0)
    for turn, (question, answer) in enumerate(normalised_turns(sample)):
        masked, targets = prompt_ids(question, tokenizer), answer_ids(answer, tokenizer)
        ids += masked + targets
        labels += [IGNORE_INDEX] * len(masked) + ([IGNORE_INDEX] * len(targets) if turn < context else targets)
    return ids, labels


def encode_prompt(
    history: Sequence[tuple[str, str]], question: str, tokenizer: TextTokenizer
) -> list[int]:
    """The instruct-mode prompt for generating the answer to `question` after the
    earlier (question, answer) turns in `history`, token for token as in training.

    Pass questions as `normalised_turns` gives them: the first question of an image
    sample starts with '<image>\\n'.
    """
    ids = [tokenizer.bos_id]
    for earlier_question, earlier_answer in history:
        ids += prompt_ids(earlier_question, tokenizer) + answer_ids(earlier_answer, tokenizer)
    return ids + prompt_ids(question, tokenizer)


def strip_image_token(text: str) -> str:
    """`text` without `<image>` markers and the whitespace next to them."""
    return text.replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "").strip()


def corpus_texts(samples: Iterable[dict]) -> Iterator[str]:
    """Every human and gpt string of `samples`, `<image>` removed, in file order, written
    as the instruct template encodes them: 'USER: {question} ASSISTANT:' and ' {answer}'.

    A tokenizer trained on these learns merges for the template words too; trained on
    the bare strings it spells 'ASSISTANT:' letter by letter, a dozen ids per turn.
    """
    for sample in samples:
        for turn in sample["conversations"]:
            text = strip_image_token(str(turn["value"]))
            yield f"USER: {text} ASSISTANT:" if turn["from"] == "human" else " " + text
