"""VILA's text-only measure: test questions asked after their scene's caption, with no image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from components.data.llava_json import TextCorpusDataset, load_llava_json
from components.evaluation.text_only import described_items, evaluate_text_only
from components.models.builders import build_llava


def test_each_prompt_is_the_described_corpus_up_to_its_answer(built_dataset: Path, built_tokenizer):
    """The prompts are token for token what `text_corpus: described` trains on, cut where each answer starts."""
    instruct, captions = built_dataset / "instruct_test.json", built_dataset / "captions_test.json"
    items, prompts = described_items(instruct, captions, built_tokenizer)
    corpus = TextCorpusDataset(instruct, built_tokenizer, "described", 10_000, captions)
    turns = sum(len(s["conversations"]) // 2 for s in load_llava_json(instruct))
    assert len(items) == len(prompts) == turns
    assert all(item.image is None and "<image>" not in item.question for item in items)
    first_conversation = corpus[0]["input_ids"].tolist()
    answers = [i for i, it in enumerate(items) if it.sample_id == items[0].sample_id]
    for k in answers:  # each prompt, then its answer, is the next stretch of the described sequence
        prompt, answer = prompts[k], built_tokenizer.encode(" " + items[k].answer) + [built_tokenizer.eos_id]
        assert first_conversation[: len(prompt) + len(answer)] == prompt + answer


def test_the_image_tower_plays_no_part(built_dataset: Path, built_tokenizer, tiny_model_config):
    """Answers come from the LM alone: another vision tower and connector give the same figures."""
    vocab, image, pad = built_tokenizer.vocab_size, built_tokenizer.image_id, built_tokenizer.pad_id
    torch.manual_seed(0)
    model = build_llava(tiny_model_config, vocab, image, pad)
    other = build_llava(tiny_model_config, vocab, image, pad)
    other.language_model.load_state_dict(model.language_model.state_dict())
    args = (built_tokenizer, built_dataset / "instruct_test.json", built_dataset / "captions_test.json", 32, 16, 6)
    first, predictions = evaluate_text_only(model, *args)
    second, again = evaluate_text_only(other, *args)
    assert first == second and predictions == again
    assert {"text_only_exact_match", "text_only_items", "text_only_em_colour"} <= first.keys()
    assert first["text_only_items"] == len([p for p in predictions if p["type"] != "grounding"])


def test_no_described_conversation_is_an_error(built_dataset: Path, built_tokenizer, tiny_model_config, tmp_path: Path):
    empty = tmp_path / "captions.json"
    empty.write_text("[]")
    model = build_llava(tiny_model_config, built_tokenizer.vocab_size, built_tokenizer.image_id, built_tokenizer.pad_id)
    with pytest.raises(ValueError, match="found no conversation in .*instruct_test.json whose image .*captions.json describes"):
        evaluate_text_only(model, built_tokenizer, built_dataset / "instruct_test.json", empty, 32)
