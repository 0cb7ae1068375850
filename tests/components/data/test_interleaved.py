"""Interleaved sequences for Flamingo, assembled from single-image conversations."""

import json

import torch

from components.data.interleaved import InterleavedDataset
from components.data.llava_json import collate_batch
from components.models.llava import IGNORE_INDEX
from components.training.stage_data import build_stage_dataset, instruct_file


def test_a_sequence_is_its_samples_one_after_another(built_dataset, built_tokenizer):
    tok = built_tokenizer
    conversations = build_stage_dataset("llava_instruct", built_dataset, tok, 32, 160)
    data = InterleavedDataset(conversations, max_images=3, max_len=1000, seed=1)
    counts = set()
    for index in range(20):
        members = data.members(index)
        assert members[0] == index and 1 <= len(members) <= 3
        counts.add(len(members))
        item = data[index]
        parts = [conversations[m] for m in members]
        assert item["input_ids"].tolist() == [tok.bos_id] + [i for p in parts for i in p["input_ids"][1:].tolist()]
        assert item["labels"].tolist() == [IGNORE_INDEX] + [i for p in parts for i in p["labels"][1:].tolist()]
        assert int((item["input_ids"] == tok.image_id).sum()) == len(members) == item["pixel_values"].shape[0]
        for slot, part in zip(item["pixel_values"], parts):  # images in the order of their <image> tokens
            assert torch.equal(slot, part["pixel_values"])
    assert counts == {1, 2, 3}
    assert data.members(7) == InterleavedDataset(conversations, 3, 1000, seed=1).members(7)  # a function of (index, seed)
    assert any(data.members(i) != InterleavedDataset(conversations, 3, 1000, seed=2).members(i) for i in range(20))


def test_chunks_past_max_len_are_left_out_whole(built_dataset, built_tokenizer):
    conversations = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 160)
    short = InterleavedDataset(conversations, max_images=3, max_len=100, seed=0)
    for index in range(len(short)):
        item = short[index]
        assert len(item["input_ids"]) <= max(100, len(conversations[index]["input_ids"]))
        assert int((item["input_ids"] == built_tokenizer.image_id).sum()) == item["pixel_values"].shape[0]


def test_the_flamingo_objective_batches_sequences_with_padded_image_slots(built_dataset, built_tokenizer):
    data = build_stage_dataset("flamingo_interleaved", built_dataset, built_tokenizer, 32, 160, max_images=3, seed=0)
    assert len(data) == 2 * len(json.loads(instruct_file(built_dataset, "train").read_text()))  # captions and instructions
    batch = collate_batch([data[i] for i in range(6)], built_tokenizer.pad_id)
    most = max(data[i]["pixel_values"].shape[0] for i in range(6))
    assert batch["pixel_values"].shape == (6, most, 3, 32, 32)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape

