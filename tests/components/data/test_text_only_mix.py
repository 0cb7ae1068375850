"""Text-only items blended into a one-image conversation stage (VILA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from components.data.llava_json import TextCorpusDataset, collate_batch
from components.data.text_only_mix import TextOnlyItems, text_only_count
from components.training.stage_data import build_dataloader, build_stage_dataset


def test_count_makes_the_fraction():
    assert text_only_count(800, 0.2) == 200 and text_only_count(100, 0.0) == 0
    assert text_only_count(300, 0.5) == 300
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        text_only_count(10, 1.0)


def test_a_fifth_of_the_stage_is_text_and_batches_with_the_images(built_dataset: Path, built_tokenizer):
    images_only = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 160)
    mixed = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 160, text_only_mix=0.2)
    flags = [bool(mixed[i]["has_image"]) for i in range(len(mixed))]
    assert len(mixed) == len(images_only) + text_only_count(len(images_only), 0.2)
    assert flags.count(False) / len(flags) == pytest.approx(0.2, abs=0.02)
    text = next(mixed[i] for i, f in enumerate(flags) if not f)
    assert built_tokenizer.image_id not in text["input_ids"].tolist() and not text["pixel_values"].any()
    loader = build_dataloader(mixed, 8, built_tokenizer.pad_id, seed=0, group_by_length=True)
    batches = list(loader)
    assert sum(len(b["has_image"]) for b in batches) == len(mixed) // 8 * 8
    assert any(not b["has_image"].all() for b in batches)


def test_the_draw_is_seeded_and_repeats_only_when_the_corpus_is_small(built_dataset: Path, built_tokenizer):
    corpus = TextCorpusDataset(built_dataset / "instruct_train.json", built_tokenizer, "described", 160, built_dataset / "captions_train.json")
    few = TextOnlyItems(corpus, 5, 32, built_tokenizer, seed=1)
    assert few.indices == TextOnlyItems(corpus, 5, 32, built_tokenizer, seed=1).indices and len(set(few.indices)) == 5
    many = TextOnlyItems(corpus, 3 * len(corpus), 32, built_tokenizer)
    assert len(many) == 3 * len(corpus) and set(many.indices) == set(range(len(corpus)))
    batch = collate_batch([few[0], few[1]], built_tokenizer.pad_id)
    assert batch["pixel_values"].shape == (2, 3, 32, 32) and not batch["has_image"].any()
    assert few.length_estimates()[0] == len(built_tokenizer.decode(corpus.sequences[few.indices[0]]))


def test_the_mix_is_for_one_image_conversations(built_dataset: Path, built_tokenizer):
    with pytest.raises(ValueError, match="text_only_mix mixes text into one-image conversations; 'llava_interleaved' has none"):
        build_stage_dataset("llava_interleaved", built_dataset, built_tokenizer, 32, 160, text_only_mix=0.2)
    with pytest.raises(ValueError, match="an any-resolution model's items are views"):
        build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 160, pinpoints=((32, 64),), text_only_mix=0.2)
