from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.data.conversation import (
    IGNORE_INDEX,
    corpus_texts,
    encode_prompt,
    encode_sample,
    normalised_turns,
)
from components.data.errors import DataError
from components.data.tokenizer import TextTokenizer

CAPTION = {
    "id": "c0",
    "image": "a.png",
    "conversations": [
        {"from": "human", "value": "<image>\nDescribe the image briefly."},
        {"from": "gpt", "value": "a large red circle at the top left"},
    ],
}
INSTRUCT = {
    "id": "i0",
    "image": "a.png",
    "conversations": [
        {"from": "human", "value": "<image>\nWhat shape is the red object?"},
        {"from": "gpt", "value": "circle"},
        {"from": "human", "value": "How many shapes are there?"},
        {"from": "gpt", "value": "2"},
    ],
}


def test_caption_mode_is_llava_plain(tokenizer: TextTokenizer) -> None:
    ids, labels = encode_sample(CAPTION, tokenizer, "caption", max_len=64)
    caption_ids = tokenizer.encode(" a large red circle at the top left")
    assert ids == [tokenizer.bos_id, tokenizer.image_id] + caption_ids + [tokenizer.eos_id]
    assert labels == [IGNORE_INDEX, IGNORE_INDEX] + caption_ids + [tokenizer.eos_id]
    assert "Describe" not in tokenizer.decode(ids)


def test_instruct_mode_masks_everything_but_answers(tokenizer: TextTokenizer) -> None:
    ids, labels = encode_sample(INSTRUCT, tokenizer, "instruct", max_len=128)
    enc = tokenizer.encode
    eos = tokenizer.eos_id
    prompt1 = enc("USER: <image>\nWhat shape is the red object? ASSISTANT:")
    prompt2 = enc("USER: How many shapes are there? ASSISTANT:")
    answer1, answer2 = enc(" circle") + [eos], enc(" 2") + [eos]
    assert ids == [tokenizer.bos_id] + prompt1 + answer1 + prompt2 + answer2
    masked = [IGNORE_INDEX]
    assert labels == masked * (1 + len(prompt1)) + answer1 + masked * len(prompt2) + answer2
    assert labels[ids.index(tokenizer.image_id)] == IGNORE_INDEX
    assert [t for t in labels if t != IGNORE_INDEX] == answer1 + answer2
    assert ids.count(tokenizer.image_id) == 1


def test_missing_image_token_is_prepended(tokenizer: TextTokenizer) -> None:
    sample = json.loads(json.dumps(INSTRUCT))
    sample["conversations"][0]["value"] = "What shape is the red object?"
    assert encode_sample(sample, tokenizer, "instruct", 128) == encode_sample(
        INSTRUCT, tokenizer, "instruct", 128
    )


def test_image_token_is_moved_to_the_start_of_its_question() -> None:
    sample = json.loads(json.dumps(INSTRUCT))
    sample["conversations"][0]["value"] = "What shape is the red object? <image>"
    assert normalised_turns(sample)[0][0] == "<image>\nWhat shape is the red object?"


def test_text_only_sample_has_no_image_token(tokenizer: TextTokenizer) -> None:
    sample = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "yes"}]}
    ids, labels = encode_sample(sample, tokenizer, "instruct", 64)
    assert tokenizer.image_id not in ids
    assert [t for t in labels if t != IGNORE_INDEX] == tokenizer.encode(" yes") + [tokenizer.eos_id]


def test_image_token_without_image_is_an_error(tokenizer: TextTokenizer) -> None:
    sample = json.loads(json.dumps(INSTRUCT))
    del sample["image"]
    with pytest.raises(DataError, match="'i0' has no 'image' but its text contains <image>"):
        encode_sample(sample, tokenizer, "instruct", 64)


def test_two_image_tokens_are_an_error(tokenizer: TextTokenizer) -> None:
    sample = json.loads(json.dumps(INSTRUCT))
    sample["conversations"][2]["value"] = "<image>\nAnd this one?"
    with pytest.raises(DataError, match="occurs 2 times"):
        encode_sample(sample, tokenizer, "instruct", 64)


def test_caption_mode_needs_an_image(tokenizer: TextTokenizer) -> None:
    sample = {**CAPTION, "image": None}
    with pytest.raises(DataError, match="caption mode needs an image"):
        encode_sample(sample, tokenizer, "caption", 64)


def test_unknown_mode_is_an_error(tokenizer: TextTokenizer) -> None:
    with pytest.raises(DataError, match="unknown conversation mode 'chat'"):
        encode_sample(INSTRUCT, tokenizer, "chat", 64)  # type: ignore[arg-type]


def test_truncation_keeps_the_image_or_refuses(tokenizer: TextTokenizer) -> None:
    full_ids, full_labels = encode_sample(INSTRUCT, tokenizer, "instruct", 128)
    image_at = full_ids.index(tokenizer.image_id)
    ids, labels = encode_sample(INSTRUCT, tokenizer, "instruct", image_at + 1)
    assert ids == full_ids[: image_at + 1] and labels == full_labels[: image_at + 1]
    with pytest.raises(DataError, match=f"max_len={image_at} would cut off the image token"):
        encode_sample(INSTRUCT, tokenizer, "instruct", image_at)
    ids, _ = encode_sample(CAPTION, tokenizer, "caption", 4)
    assert len(ids) == 4 and ids[1] == tokenizer.image_id


def test_encode_prompt_reproduces_training_ids(tokenizer: TextTokenizer, shapes_dir: Path) -> None:
    samples = json.loads((shapes_dir / "instruct_train.json").read_text())[:20]
    for sample in [INSTRUCT] + samples:
        ids, _ = encode_sample(sample, tokenizer, "instruct", 1024)
        turns = normalised_turns(sample)
        for k, (question, answer) in enumerate(turns):
            prompt = encode_prompt(turns[:k], question, tokenizer)
            continued = prompt + tokenizer.encode(" " + answer) + [tokenizer.eos_id]
            assert continued == ids[: len(continued)]
        assert len(continued) == len(ids)


def test_corpus_texts_are_the_template_pieces_without_image_token() -> None:
    texts = list(corpus_texts([CAPTION, INSTRUCT]))
    assert texts == [
        "USER: Describe the image briefly. ASSISTANT:",
        " a large red circle at the top left",
        "USER: What shape is the red object? ASSISTANT:",
        " circle",
        "USER: How many shapes are there? ASSISTANT:",
        " 2",
    ]


def test_tokenizer_trained_on_corpus_texts_merges_template_words(
    tokenizer: TextTokenizer,
) -> None:
    assert [tokenizer.token(i) for i in tokenizer.encode("USER: ASSISTANT:")] == [
        "USER", ":", "ĠASSISTANT", ":"
    ]
