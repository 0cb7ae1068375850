"""The training data of each objective, read from a dataset directory.

A dataset directory holds LLaVA-JSON files (`captions_{split}.json`,
`instruct_{split}.json`), their images, and the corpus tokenizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import ConcatDataset, Dataset

from components.data.coordinate_bins import CoordinateBins
from components.data.grounded import grounded_caption, located_answers, located_blocks
from components.data.interleaved import InterleavedDataset
from components.data.label_prompts import LabelPrompts
from components.data.llava_json import ImageTextDataset, LlavaJsonDataset, TextCorpusDataset, collate_batch
from components.data.length_grouped import LengthGroupedBatchSampler
from components.data.location_tokens import LocationGrid
from components.data.ofa_instructions import OFA_TASKS, OfaInstructions
from components.data.pages_dataset import page_captions_file, reading_file
from components.data.text_only_mix import TextOnlyItems, text_only_count
from components.data.video_clips import SizeBucketBatchSampler, VideoCaptionDataset
from components.data.tokenizer import TextTokenizer
from components.models.anyres import Size
from components.training.encoded_videos import EncodedVideos
from components.training.rank_split import RankSplitBatches
from components.training.resumable_loader import ResumableDataLoader
from components.training.objectives import LLAVA_OBJECTIVES, ONE_IMAGE_OBJECTIVES, VIDEO_OBJECTIVES

TextCorpus = Literal["turns", "described"]
Corpus = Literal["scenes", "pages"]
LABELLED_OBJECTIVES = frozenset({"contrastive", "uni_perceiver"})
"""The objectives that can read image-label data (label_prompts): UniCL's contrastive loss, Uni-Perceiver's retrieval."""


def captions_file(dataset_dir: Path, split: str) -> Path:
    return dataset_dir / f"captions_{split}.json"


def instruct_file(dataset_dir: Path, split: str) -> Path:
    return dataset_dir / f"instruct_{split}.json"


def build_stage_dataset(
    objective: str, dataset_dir: Path, tokenizer: TextTokenizer, image_size: int, max_len: int, split: str = "train",
    pinpoints: tuple[Size, ...] | None = None, max_images: int = 1, seed: int = 0, region_grid: int | None = None,
    text_corpus: TextCorpus = "turns", label_prompts: LabelPrompts | None = None, text_only_mix: float = 0.0,
    location_grid: LocationGrid | None = None, corpus: Corpus = "scenes",
    ofa_tasks: Mapping[str, float] | None = None, coordinate_bins: CoordinateBins | None = None, infill_codes: int = 0,
    object_classes: bool = False,
) -> Dataset:
    """`pinpoints`: the model's any-resolution grids (LLaVA-1.6) for the conversation objectives;
    `max_images`: the most images in an interleaved sequence (Flamingo, KOSMOS-1), drawn with `seed`; `region_grid`: the
    tower's patches per side, for the contrastive objective's region-word alignment; `text_corpus`: what
    text-only LM pretraining reads ('turns': captions and single turns; 'described': also every
    conversation after its image's caption, see TextCorpusDataset); `label_prompts`: UniCL's image-label
    view of the captions, for the contrastive objective (see ImageTextDataset); `text_only_mix`: the fraction of
    a conversation objective's items that are text-only described conversations (VILA, see TextOnlyItems);
    `location_grid`: KOSMOS-2, the conversation objectives' captions become grounded captions and their
    boxes location tokens of this grid (see data.grounded); `corpus`: 'pages', KOSMOS-2.5's text pages instead
    of the scenes (see build_page_dataset); `ofa_tasks`, `coordinate_bins`, `infill_codes`: OFA's instructions,
    their weights, its location tokens and the code tokens of an image's middle (see data.ofa_instructions);
    `object_classes`: the uni_perceiver objective's items also hold the class of a single-object scene (for its
    classification task; see ImageTextDataset)."""
    if text_corpus != "turns" and objective != "language_modeling":
        raise ValueError(f"text_corpus is for the language_modeling objective; {objective!r} reads no text corpus")
    if region_grid is not None and objective != "contrastive":
        raise ValueError(f"region_grid is for the contrastive objective's region words; {objective!r} has none")
    if label_prompts is not None and objective not in LABELLED_OBJECTIVES:
        raise ValueError(f"label_prompts are image-label data for the contrastive and uni_perceiver objectives; {objective!r} has none")
    if object_classes and objective != "uni_perceiver":
        raise ValueError(f"object_classes label scenes for Uni-Perceiver's classification task; {objective!r} has none")
    if location_grid is not None and objective not in LLAVA_OBJECTIVES:
        raise ValueError(f"location tokens ground a LLaVA-style model's captions and boxes; {objective!r} has none")

    if objective in VIDEO_OBJECTIVES:  # the dataset's videos (images among them, as one-frame videos), at their own sizes
        return VideoCaptionDataset(dataset_dir, split, tokenizer, max_len)
    if corpus == "pages":
        return build_page_dataset(objective, dataset_dir, tokenizer, image_size, max_len, split, region_grid, location_grid)
    if text_only_mix > 0:
        if objective not in ONE_IMAGE_OBJECTIVES:
            raise ValueError(f"text_only_mix mixes text into one-image conversations; {objective!r} has none (allowed: llava_pretrain, llava_instruct, llava_multitask)")
        if pinpoints is not None:
            raise ValueError("text_only_mix gives text-only items one blank square image; an any-resolution model's items are views")
        images = build_stage_dataset(objective, dataset_dir, tokenizer, image_size, max_len, split, location_grid=location_grid)
        described = TextCorpusDataset(instruct_file(dataset_dir, split), tokenizer, "described", max_len, captions_file(dataset_dir, split))
        text = TextOnlyItems(described, text_only_count(len(images), text_only_mix), image_size, tokenizer, seed)
        return ConversationMix([images, text])
    if objective == "contrastive":
        return ImageTextDataset(captions_file(dataset_dir, split), dataset_dir, tokenizer, image_size, max_len, region_grid, label_prompts)
    if objective == "ofa_instruct":
        if coordinate_bins is None:
            raise ValueError("OFA writes boxes as coordinate bins: build the dataset with data.tokenizer.coordinate_bins")
        return OfaInstructions(captions_file(dataset_dir, split), instruct_file(dataset_dir, split), dataset_dir, tokenizer, image_size,
                               coordinate_bins, ofa_tasks or dict.fromkeys(OFA_TASKS, 1.0), infill_codes, max_len, seed)
    if objective == "uni_perceiver":
        return ImageTextDataset(captions_file(dataset_dir, split), dataset_dir, tokenizer, image_size, max_len, label_prompts=label_prompts,
                                object_classes=object_classes)
    if objective in ("qformer_pretrain", "blip_pretrain", "vq_tokenizer"):
        return ImageTextDataset(captions_file(dataset_dir, split), dataset_dir, tokenizer, image_size, max_len)
    if objective == "language_modeling":
        corpora = [
            TextCorpusDataset(captions_file(dataset_dir, split), tokenizer, "caption", max_len),
            TextCorpusDataset(instruct_file(dataset_dir, split), tokenizer, "instruct", max_len),
        ]
        if text_corpus == "described":
            corpora.append(TextCorpusDataset(instruct_file(dataset_dir, split), tokenizer, "described", max_len, captions_file(dataset_dir, split)))
        return ConcatDataset(corpora)

    def conversations(mode: str) -> LlavaJsonDataset:
        path = captions_file(dataset_dir, split) if mode == "caption" else instruct_file(dataset_dir, split)
        if location_grid is None:
            return LlavaJsonDataset(path, dataset_dir, tokenizer, mode, image_size, max_len, pinpoints)
        rewrite = partial(grounded_caption if mode == "caption" else located_answers, grid=location_grid)
        return LlavaJsonDataset(path, dataset_dir, tokenizer, "instruct", image_size, max_len, pinpoints, rewrite)

    if objective == "llava_pretrain":
        return conversations("caption")
    if objective == "llava_instruct":
        return conversations("instruct")
    if objective == "llava_multitask":
        return ConversationMix([conversations("caption"), conversations("instruct")])
    if objective in ("flamingo_interleaved", "llava_interleaved"):  # captions and conversations, several to a sequence
        return InterleavedDataset(ConversationMix([conversations("caption"), conversations("instruct")]), max_images, max_len, seed)
    raise ValueError(f"unknown objective {objective!r}")


def build_page_dataset(
    objective: str, dataset_dir: Path, tokenizer: TextTokenizer, image_size: int, max_len: int, split: str = "train",
    region_grid: int | None = None, location_grid: LocationGrid | None = None,
) -> Dataset:
    """The text pages' data: for a contrastive tower each page with what it says (its lines the regions); for an
    LM what the pages say and how they are read; for a LLaVA-style model every page read by both task prompts,
    its blocks' boxes as location tokens with `location_grid`."""
    if objective == "contrastive":
        return ImageTextDataset(page_captions_file(dataset_dir, split), dataset_dir, tokenizer, image_size, max_len, region_grid)
    if objective == "language_modeling":
        return ConcatDataset([
            TextCorpusDataset(page_captions_file(dataset_dir, split), tokenizer, "caption", max_len),
            TextCorpusDataset(reading_file(dataset_dir, split), tokenizer, "caption", max_len),
        ])
    if objective in ONE_IMAGE_OBJECTIVES:
        rewrite = partial(located_blocks, grid=location_grid) if location_grid is not None else None
        return LlavaJsonDataset(reading_file(dataset_dir, split), dataset_dir, tokenizer, "instruct", image_size, max_len, rewrite=rewrite)
    raise ValueError(f"the {objective!r} objective does not read text pages (allowed: contrastive, language_modeling, {', '.join(sorted(ONE_IMAGE_OBJECTIVES))})")


class ConversationMix(ConcatDataset):
    """Several conversation datasets as one, shuffled together; batching by length still works."""

    def length_estimates(self) -> list[int]:
        return [n for dataset in self.datasets for n in dataset.length_estimates()]


def build_dataloader(
    dataset: Dataset, batch_size: int, pad_id: int, seed: int, shuffle: bool = True, group_by_length: bool = False
) -> ResumableDataLoader:
    """The stage's loader; it knows its place in the sample stream, so a stage resumes where it stopped. Batches by
    size or length are shared out among a DDP group's processes by RankSplitBatches; plain ones by Lightning."""
    generator = torch.Generator().manual_seed(seed)
    collate = partial(collate_batch, pad_id=pad_id)
    if isinstance(dataset, (VideoCaptionDataset, EncodedVideos)):  # a batch stacks videos (or latents) of one size
        sizes = [dataset.size(i) for i in range(len(dataset))]
        sampler = RankSplitBatches(SizeBucketBatchSampler(sizes, batch_size, generator, drop_last=False))
        return ResumableDataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=0, order_generator=generator)
    if group_by_length:
        if not hasattr(dataset, "length_estimates"):
            raise ValueError(f"group_by_length needs a dataset with length_estimates(); {type(dataset).__name__} has none")
        grouped = LengthGroupedBatchSampler(dataset.length_estimates(), batch_size, generator, drop_last=len(dataset) >= batch_size)
        sampler = RankSplitBatches(grouped)
        return ResumableDataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=0, order_generator=generator)
    return ResumableDataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle and len(dataset) >= batch_size,
        generator=generator,
        collate_fn=collate,
        num_workers=0,
        order_generator=generator,
    )
