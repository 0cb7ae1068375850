from __future__ import annotations

from pathlib import Path

import pytest

from components.data.errors import DataError
from components.data.tokenizer import IMAGE_TOKEN, SPECIAL_TOKENS, TextTokenizer, train_tokenizer


def test_special_token_ids_and_vocab_size(tokenizer: TextTokenizer) -> None:
    assert SPECIAL_TOKENS == ("<pad>", "<s>", "</s>", "<image>")
    assert IMAGE_TOKEN == "<image>"
    ids = (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.image_id)
    assert ids == (0, 1, 2, 3)
    assert 260 < tokenizer.vocab_size <= 400


@pytest.mark.parametrize(
    "text",
    [
        "a large red circle at the top left",
        "  leading and trailing spaces  ",
        "Where is the blue square? Answer with a bounding box.",
        "[[062,125,312,406]]",
        "tabs\tand\nnewlines\n\n",
        "ünïcödé and emoji 😀 never seen in training",
        "",
    ],
)
def test_round_trip_is_lossless(tokenizer: TextTokenizer, text: str) -> None:
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_training_learned_merges_for_corpus_words(tokenizer: TextTokenizer) -> None:
    assert len(tokenizer.encode(" circle")) == 1
    assert len(tokenizer.encode("a large red circle")) < len("a large red circle") / 2


def test_image_token_is_one_id_and_never_split(tokenizer: TextTokenizer) -> None:
    assert tokenizer.encode(IMAGE_TOKEN) == [tokenizer.image_id]
    ids = tokenizer.encode("USER: <image>\nWhat is this?<image>")
    assert ids.count(tokenizer.image_id) == 2
    assert ids[-1] == tokenizer.image_id
    assert tokenizer.decode(ids) == "USER: \nWhat is this?"
    assert tokenizer.decode(ids, skip_special=False) == "USER: <image>\nWhat is this?<image>"


def test_every_digit_is_its_own_token(tokenizer: TextTokenizer) -> None:
    ids = tokenizer.encode("12345")
    assert [tokenizer.decode([i]) for i in ids] == ["1", "2", "3", "4", "5"]
    box_ids = tokenizer.encode("[[062,125,312,406]]")
    digit_pieces = [tokenizer.decode([i]) for i in box_ids if tokenizer.decode([i]).isdigit()]
    assert digit_pieces == list("062125312406")


def test_encode_adds_no_bos_or_eos(tokenizer: TextTokenizer) -> None:
    ids = tokenizer.encode("red")
    assert tokenizer.bos_id not in ids and tokenizer.eos_id not in ids
    assert tokenizer.encode("") == []


def test_save_and_load(tokenizer: TextTokenizer, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "tokenizer.json"
    tokenizer.save(path)
    loaded = TextTokenizer.load(path)
    text = "USER: <image>\nHow many shapes are there? ASSISTANT: 3"
    assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.vocab_size == tokenizer.vocab_size
    assert loaded.image_id == tokenizer.image_id


def test_load_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="tokenizer file not found: .*missing.json"):
        TextTokenizer.load(tmp_path / "missing.json")


def test_load_corrupt_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text('{"version": ')
    with pytest.raises(DataError, match="not a valid tokenizer.json"):
        TextTokenizer.load(path)


def test_vocab_size_too_small_is_refused() -> None:
    with pytest.raises(DataError, match="at least 260"):
        train_tokenizer(["some text"], vocab_size=100)


def test_digits_stay_single_even_when_numbers_repeat() -> None:
    # Without the digit split, BPE would learn merges such as '20' and '2024' here.
    numbers = train_tokenizer(["in 2024 and 2024, [[062,125,312,406]] 999"] * 50, vocab_size=300)
    ids = numbers.encode("2024 [[062,125]] 999")
    pieces = [numbers.decode([i]) for i in ids]
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("2024062125999")
    assert len(numbers.encode(" and")) == 1  # merges were learned for the words
