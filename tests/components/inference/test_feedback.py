"""DRESS's exchanges: answer, feedback, answer again; and the conditional fine-tuning samples they make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from components.data.conversation import IGNORE_INDEX, encode_sample
from components.data.errors import DataError
from components.data.llava_json import LlavaJsonDataset, load_llava_json
from components.evaluation.critic import critique
from components.evaluation.feedback_eval import exchange_records, feedback_metrics
from components.evaluation.llava_eval import EvalItem, eval_items
from components.inference.feedback import Exchange, answer_with_feedback, feedback_samples
from components.models.builders import build_llava


def item(kind: str, truth: str, question: str = "<image>\nWhat?") -> EvalItem:
    return EvalItem("s", None, (), question, truth, kind)


def exchange(kind: str, truth: str, *answers: str) -> Exchange:
    return Exchange(item(kind, truth), answers, tuple(critique(kind, a, truth) for a in answers))


def test_metrics_count_each_round_and_what_feedback_fixed_or_broke():
    exchanges = [
        exchange("colour", "red", "green", "red"),   # fixed
        exchange("colour", "red", "red", "red"),     # kept
        exchange("shape", "square", "square", "circle"),  # broken
        exchange("count", "3", "2", "2"),            # still wrong
    ]
    metrics = feedback_metrics(exchanges)
    assert metrics["feedback_em_round0"] == 0.5 and metrics["feedback_em_round1"] == 0.5 and metrics["feedback_gain"] == 0.0
    assert metrics["feedback_fixed_round1"] == 0.5 and metrics["feedback_broken_round1"] == 0.5
    assert metrics["feedback_em_colour_round1"] == 1.0 and "feedback_em_colour_round0" not in metrics
    records = exchange_records(exchanges[:1])
    assert [r["prediction"] for r in records[0]["rounds"]] == ["green", "red"] and records[0]["rounds"][0]["score"] == 0


def test_each_round_reads_the_whole_exchange_so_far():
    ex = exchange("colour", "red", "green", "blue")
    first, second = ex.feedback
    assert ex.turns() == [("<image>\nWhat?", "green"), (first.as_turn(), "blue")]
    assert second.as_turn().startswith("Score: 0/10. The colour is wrong: it is not blue.")


def test_a_sample_trains_only_the_true_answers_after_the_feedback(built_tokenizer):
    history = (("<image>\nIs there a red circle?", "yes"),)
    asked = Exchange(EvalItem("7", Path("/d/images/train/0007.png"), history, "What colour is the circle?", "red", "colour"),
                     ("green",), (critique("colour", "green", "red"),))
    (sample,) = feedback_samples([asked], lambda it: "images/train/0007.png")
    assert sample["image"] == "images/train/0007.png" and sample["context_turns"] == 2
    values = [t["value"] for t in sample["conversations"]]
    assert values == ["<image>\nIs there a red circle?", "yes", "What colour is the circle?", "green", asked.feedback[0].as_turn(), "red"]
    ids, labels = encode_sample(sample, built_tokenizer, "instruct", 512)
    targets = [i for i, label in zip(ids, labels) if label != IGNORE_INDEX]
    red = built_tokenizer.encode(" red") + [built_tokenizer.eos_id]
    assert targets == red
    (two,) = feedback_samples([asked], lambda it: "images/train/0007.png", rounds=2)  # then full marks, and the answer kept
    assert [t["value"] for t in two["conversations"]][-2:] == [critique("colour", "red", "red").as_turn(), "red"]
    ids, labels = encode_sample(two, built_tokenizer, "instruct", 512)
    assert [i for i, label in zip(ids, labels) if label != IGNORE_INDEX] == red + red and two["context_turns"] == 2


def test_context_turns_are_checked_when_the_file_is_read(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "context_turns": 1}]')
    with pytest.raises(DataError, match=r"field 'context_turns' is 1; expected a whole number from 0 to 0 .*at least one answer trains"):
        load_llava_json(bad)


def test_a_model_answers_every_round_and_the_samples_train_with_the_originals(built_dataset: Path, built_tokenizer, tiny_model_config):
    tok = built_tokenizer
    torch.manual_seed(0)
    model = build_llava(tiny_model_config, tok.vocab_size, tok.image_id, tok.pad_id).eval()
    items = eval_items(built_dataset / "instruct_train.json", built_dataset, limit=3)
    with torch.inference_mode():
        exchanges = answer_with_feedback(model, tok, items, 32, rounds=2, batch_size=8, max_new_tokens=6)
    assert [len(ex.answers) for ex in exchanges] == [3] * len(items) and all(len(ex.feedback) == 3 for ex in exchanges)
    root = built_dataset.resolve()
    samples = feedback_samples(exchanges, lambda it: it.image.resolve().relative_to(root).as_posix())
    path = built_dataset.parent / "feedback_train.json"
    path.write_text(json.dumps(samples))
    data = LlavaJsonDataset(path, built_dataset, tok, "instruct", 32, 320)
    assert len(data) == len(items) and all(bool(data[i]["has_image"]) for i in range(len(data)))
