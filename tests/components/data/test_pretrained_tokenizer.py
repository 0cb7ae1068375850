"""A pretrained LM's tokenizer as the dataset's: its own ids kept, mmops' special tokens added after
them, and the dataset's copy read back by the same loader the stages use."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.errors import DataError
from components.data.pretrained_tokenizer import tokenizer_from_pretrained, tokenizer_sha256
from components.data.shapes_world import ShapesConfig
from components.data.tokenizer import SPECIAL_TOKENS


def test_special_tokens_are_added_after_the_vocabulary_and_existing_ones_keep_their_ids(tiny_hf_dirs: dict[str, Path]):
    original = Tokenizer.from_file(str(tiny_hf_dirs["llama"] / "tokenizer.json"))
    tokenizer = tokenizer_from_pretrained(tiny_hf_dirs["llama"])
    size = original.get_vocab_size()
    assert (tokenizer.bos_id, tokenizer.eos_id) == (original.token_to_id("<s>"), original.token_to_id("</s>"))  # the LM's own
    assert {tokenizer.pad_id, tokenizer.image_id} == {size, size + 1} and tokenizer.vocab_size == size + 2
    text = "USER: How many shapes are there? ASSISTANT: 2"
    assert tokenizer.encode(text) == original.encode(text, add_special_tokens=False).ids
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert len(tokenizer.encode("<image>\nWhat colour?")) == len(tokenizer.encode("\nWhat colour?")) + 1  # one id, never split

    qwen = tokenizer_from_pretrained(tiny_hf_dirs["qwen2"])  # has none of them: all four are new
    assert sorted(qwen.vocabulary()[t] for t in SPECIAL_TOKENS) == list(range(qwen.vocab_size - 4, qwen.vocab_size))


def test_a_directory_without_a_tokenizer_json_is_refused(tmp_path: Path, tiny_hf_dirs: dict[str, Path]):
    with pytest.raises(DataError, match="has no tokenizer.json"):
        tokenizer_from_pretrained(tiny_hf_dirs["clip"])
    with pytest.raises(DataError, match="does not exist"):
        tokenizer_from_pretrained(tmp_path / "nowhere")


def test_the_dataset_takes_the_pretrained_tokenizer_instead_of_training_one(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    config = ShapesConfig(seed=3, image_size=32, train=6, val=2, test=2, max_shapes=2)
    build_shapes_dataset(config, 320, tmp_path / "data", pretrained_tokenizer=tiny_hf_dirs["llama"])
    stored = load_dataset_tokenizer(tmp_path / "data")
    assert stored.vocabulary() == tokenizer_from_pretrained(tiny_hf_dirs["llama"]).vocabulary()
    assert stored.vocab_size != 320
    assert len(tokenizer_sha256(tiny_hf_dirs["llama"])) == 64
