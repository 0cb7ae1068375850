"""Reading any LLaVA-format JSON dataset: validation, safe image paths (paths.py), torch Datasets.

A LLaVA JSON file is a list of samples:

    {"id": "...", "image": "relative/path.png",            # image is optional
     "conversations": [{"from": "human", "value": "<image>\\nQuestion"},
                       {"from": "gpt", "value": "Answer"}, ...]}

Other keys are kept and ignored. Image paths are relative to an image root and may
never point outside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from components.data.conversation import (
    IGNORE_INDEX,
    ConversationMode,
    answer_ids,
    encode_sample,
    normalised_turns,
    prompt_ids,
    strip_image_token,
)
from components.data.errors import DataError
from components.data.label_prompts import LabelPrompts, object_class
from components.data.llava_images import ImageProcessor, collate_images, load_image
from components.data.paths import InsideResolver, resolve_image
from components.data.regions import NO_REGION, check_regions, phrase_words, token_regions
from components.data.tokenizer import TextTokenizer
from components.models.anyres import Size

CorpusMode = Literal["caption", "instruct", "described"]
CORPUS_MODES: tuple[str, ...] = ("caption", "instruct", "described")

ROLES = ("human", "gpt")


def load_llava_json(path: Path) -> list[dict]:
    """The samples of a LLaVA JSON file, each checked; DataError names file, sample, field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"LLaVA JSON file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno})") from exc
    return check_llava_samples(data, str(path))


def check_llava_samples(data: object, path: str) -> list[dict]:
    """Parsed LLaVA JSON (a list of samples), each checked; DataError names `path` (a file or an object
    in a store), the sample and the field."""
    if not isinstance(data, list):
        raise DataError(f"{path}: the top level is a {type(data).__name__}; "
                        "a LLaVA JSON file is a list of samples")
    for index, sample in enumerate(data):
        _check_sample(path, index, sample)
    return data


def _check_sample(path: Path | str, index: int, sample: object) -> None:
    where = f"{path}: sample {index}"
    if not isinstance(sample, dict):
        raise DataError(f"{where} is a {type(sample).__name__}; each sample must be an object")
    if "id" in sample:
        where += f" (id {sample['id']!r})"
    image = sample.get("image")
    if image is not None and (not isinstance(image, str) or not image):
        raise DataError(f"{where}: field 'image' is {image!r}; expected a non-empty "
                        "relative path string, or leave the field out")
    turns = sample.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: field 'conversations' is {turns!r}; expected a non-empty "
                        "list of {'from': 'human'|'gpt', 'value': str} turns")
    if len(turns) % 2:
        raise DataError(f"{where}: 'conversations' has {len(turns)} turns; every human turn "
                        "needs a gpt answer, so the count must be even")
    for number, turn in enumerate(turns):
        field = f"conversations[{number}]"
        if not isinstance(turn, dict):
            raise DataError(f"{where}: field '{field}' is {turn!r}; expected an object")
        expected = ROLES[number % 2]
        if turn.get("from") != expected:
            raise DataError(f"{where}: field '{field}.from' is {turn.get('from')!r}; expected "
                            f"{expected!r} (turns alternate human, gpt, starting with human)")
        if not isinstance(turn.get("value"), str):
            raise DataError(f"{where}: field '{field}.value' is {turn.get('value')!r}; "
                            "expected a string")
    context = sample.get("context_turns", 0)
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context < len(turns) // 2:
        raise DataError(f"{where}: field 'context_turns' is {context!r}; expected a whole number from 0 to "
                        f"{len(turns) // 2 - 1} (the leading answers that are context, not targets; at least one answer trains)")
    negatives = sample.get("hard_negatives")
    if negatives is not None and (not isinstance(negatives, list)
                                  or not all(isinstance(n, str) and n for n in negatives)):
        raise DataError(f"{where}: field 'hard_negatives' is {negatives!r}; expected a list of "
                        "non-empty caption strings, or leave the field out")
    if "regions" in sample:
        check_regions(sample["regions"], where)


def _image_paths(json_path: Path, root: Path, samples: list[dict]) -> list[Path | None]:
    """Each sample's resolved image path, checked up front so a bad path fails at once."""
    inside = InsideResolver(root)
    return [
        None if s.get("image") is None
        else inside(s["image"], source=f"{json_path} sample {i}", what="image path")
        for i, s in enumerate(samples)
    ]


class LlavaJsonDataset(Dataset):
    """Items: pixel_values (3,S,S; zeros without image), has_image, input_ids, labels.

    A sample's ids and labels are encoded on its first visit and kept: tokenizing
    took three quarters of an item's time, and a stage visits each sample several times.
    """

    def __init__(self, json_path: Path, image_root: Path, tokenizer: TextTokenizer,
                 mode: ConversationMode, image_size: int, max_len: int, pinpoints: tuple[Size, ...] | None = None,
                 rewrite: Callable[[dict], dict] | None = None) -> None:
        """`pinpoints`: any-resolution input (LLaVA-1.6), see llava_images.ImageProcessor; `rewrite`: what
        each sample becomes once read (KOSMOS-2's grounded captions and located answers, data.grounded)."""
        self.samples = load_llava_json(json_path)
        if rewrite is not None:
            self.samples = [rewrite(sample) for sample in self.samples]
        self.image_paths = _image_paths(Path(json_path), Path(image_root), self.samples)
        self.tokenizer, self.mode = tokenizer, mode
        self.images = ImageProcessor(image_size, pinpoints)
        self.max_len = max_len
        self._encoded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def length_estimates(self) -> list[int]:
        """Characters of text per sample: a proxy for its token count that needs no tokenizing,
        for batching samples of similar length (LLaVA counts words to the same end)."""
        return [sum(len(turn["value"]) for turn in s["conversations"]) for s in self.samples]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids, labels = self._encode(index)
        path = self.image_paths[index]
        return {**self.images(path), "has_image": torch.tensor(path is not None), "input_ids": ids, "labels": labels}

    def _encode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index not in self._encoded:
            ids, labels = encode_sample(self.samples[index], self.tokenizer, self.mode, self.max_len)
            self._encoded[index] = torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)
        return self._encoded[index]


def encode_caption(tokenizer: TextTokenizer, text: str, max_len: int) -> list[int]:
    """A caption's ids + eos for a text tower, cut so that eos stays the last id (text towers pool at eos)."""
    return tokenizer.encode(text)[: max_len - 1] + [tokenizer.eos_id]


class ImageTextDataset(Dataset):
    """Image-caption pairs for contrastive pretraining; the caption is the first gpt
    answer. Items: pixel_values (3,S,S) and text_ids = caption ids + eos; a long caption
    is cut so that eos stays the last id (text towers pool at eos).

    When every sample lists `hard_negatives` (captions wrong in one detail), items also
    hold negative_ids: one of them, drawn with torch's generator, encoded alike.

    With `region_grid` (the tower's patches per side), every sample must list `regions`, and items
    also hold region_owner (grid * grid,): the region each patch token belongs to or NO_REGION (see
    data.regions), and region_words: the token ids of each region's words.

    With `label_prompts` (UniCL's image-label data), items also hold `pair_label`: the scenes of one
    object are labelled by its class ('red circle'), and with probability label_prompts.fraction their
    text is a template filled with it rather than the caption; every caption is a label of its own
    (captions worded alike share one).

    With `object_classes` (Uni-Perceiver's classification), items also hold `object_class`: the index in
    `classes` of a single-object scene's class, -1 for a scene of several; the texts stay captions."""

    def __init__(self, json_path: Path, image_root: Path, tokenizer: TextTokenizer,
                 image_size: int, max_len: int, region_grid: int | None = None,
                 label_prompts: LabelPrompts | None = None, object_classes: bool = False) -> None:
        if max_len < 2:
            raise DataError(f"max_len={max_len} is too small; it must be at least 2")
        samples = load_llava_json(json_path)
        for index, sample in enumerate(samples):
            if sample.get("image") is None:
                raise DataError(f"{json_path}: sample {index} has no 'image'; every sample "
                                "of an image-text dataset needs one")
            if region_grid is not None and "regions" not in sample:
                raise DataError(f"{json_path}: sample {index} has no 'regions'; region-word alignment "
                                "(region_weight > 0) needs every caption's objects as boxes and phrases")
        self.image_paths = _image_paths(Path(json_path), Path(image_root), samples)
        self.captions = [strip_image_token(s["conversations"][1]["value"]) for s in samples]
        negatives = [s.get("hard_negatives") or [] for s in samples]
        self.negatives = negatives if all(negatives) else None
        self.regions = [s["regions"] for s in samples] if region_grid is not None else None
        self.tokenizer, self.image_size, self.max_len, self.region_grid = tokenizer, image_size, max_len, region_grid
        self.label_prompts, self.object_classes = label_prompts, object_classes
        self.scene_classes = [object_class(s) for s in samples]  # None for a scene of several objects
        self.classes = tuple(sorted({c for c in self.scene_classes if c is not None}))
        self.class_ids = {name: number for number, name in enumerate(self.classes)}
        if object_classes and not self.classes:
            raise DataError(f"{json_path}: no scene has a single object, so there is nothing to classify")
        if label_prompts is not None:
            names = self.classes
            captions = {text: len(names) + number for number, text in enumerate(dict.fromkeys(self.captions))}
            self.caption_labels = [captions[c] for c in self.captions]
        self._encoded: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"pixel_values": load_image(self.image_paths[index], self.image_size)}
        item["text_ids"], label = self._text(index)
        if label is not None:
            item["pair_label"] = torch.tensor(label)
        if self.object_classes:
            name = self.scene_classes[index]
            item["object_class"] = torch.tensor(self.class_ids[name] if name is not None else -1)
        if self.negatives is not None:
            options = self.negatives[index]
            item["negative_ids"] = self._encode(options[int(torch.randint(len(options), ()))])
        if self.regions is not None:
            regions = self.regions[index]
            item["region_owner"] = torch.tensor(token_regions([r["box"] for r in regions], self.region_grid))
            item["region_words"] = [[self._word(w) for w in phrase_words(r["phrase"])] for r in regions]
        return item

    def _text(self, index: int) -> tuple[torch.Tensor, int | None]:
        """The item's text ids and, with label prompts, its label."""
        prompts = self.label_prompts
        if prompts is None:
            return self._encode(self.captions[index]), None
        name = self.scene_classes[index]
        if name is not None and float(torch.rand(())) < prompts.fraction:
            template = prompts.templates[int(torch.randint(len(prompts.templates), ()))]
            return self._encode(template.format(name)), self.class_ids[name]
        return self._encode(self.captions[index]), self.caption_labels[index]

    def _encode(self, text: str) -> torch.Tensor:
        """Caption ids + eos, each text encoded once (a stage visits every caption several times)."""
        if text not in self._encoded:
            self._encoded[text] = torch.tensor(encode_caption(self.tokenizer, text, self.max_len), dtype=torch.long)
        return self._encoded[text]

    def _word(self, word: str) -> tuple[int, ...]:
        """A word's ids as it is spelt inside a caption, after a space."""
        key = "\0" + word  # no caption starts with a NUL: words and captions share the cache
        if key not in self._encoded:
            self._encoded[key] = torch.tensor(self.tokenizer.encode(" " + word), dtype=torch.long)
        return tuple(self._encoded[key].tolist())


def collate_region_words(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """The batch's distinct region words and which patch tokens each describes.

    word_ids / word_mask (W, L): every distinct word of the batch's regions once, padded;
    region_positive (B, N, W): True where word w is in the phrase of the region token n of image b
    belongs to (all False for a token of no region)."""
    vocabulary: dict[tuple[int, ...], int] = {}
    for item in items:
        for words in item["region_words"]:
            for word in words:
                vocabulary.setdefault(word, len(vocabulary))
    tokens = items[0]["region_owner"].shape[0]
    positive = torch.zeros(len(items), tokens, max(1, len(vocabulary)), dtype=torch.bool)
    for b, item in enumerate(items):
        for n, owner in enumerate(item["region_owner"].tolist()):
            if owner != NO_REGION:
                positive[b, n, [vocabulary[w] for w in item["region_words"][owner]]] = True
    words = [torch.tensor(w, dtype=torch.long) for w in vocabulary] or [torch.tensor([pad_id])]
    return {"word_ids": _pad(words, pad_id), "word_mask": _pad([torch.ones_like(w) for w in words], 0), "region_positive": positive}


class TextCorpusDataset(Dataset):
    """Text-only language-model data from a LLaVA JSON file, images ignored.

    mode 'instruct': one item per turn, [bos] 'USER: {q} ASSISTANT:' ' {a}' [eos],
    encoded piece by piece exactly as in instruct training but without `<image>`;
    mode 'caption': one item per sample, [bos] ' {caption}' [eos];
    mode 'described': one item per conversation whose image `captions_json` describes,
    [bos] ' {caption}' [eos] and then every turn as in 'instruct': questions about a scene
    answered from a description of it, as LLaVA wrote its instructions from captions with a
    text-only model. A language model that stays frozen behind soft visual prompts (BLIP-2,
    MiniGPT-4, Flamingo) needs that skill: the prompts can stand for a description, not answer for it.
    Every id after bos is a target; items are cut to max_len ids.
    """

    def __init__(self, json_path: Path, tokenizer: TextTokenizer,
                 mode: CorpusMode, max_len: int, captions_json: Path | None = None) -> None:
        if max_len < 2:
            raise DataError(f"max_len={max_len} is too small; it must be at least 2")
        if (mode == "described") != (captions_json is not None):
            raise DataError("mode 'described' needs captions_json, the captions of the conversations' images; other modes take none")
        descriptions = captions_by_image(captions_json) if captions_json is not None else {}
        self.sequences: list[list[int]] = []
        for sample in load_llava_json(json_path):
            text_only = {**sample, "image": None, "conversations": [
                {**t, "value": strip_image_token(t["value"])} for t in sample["conversations"]
            ]}
            turns = normalised_turns(text_only)
            if mode == "caption":
                pieces = [answer_ids(turns[0][1], tokenizer)]
            elif mode == "instruct":
                pieces = [prompt_ids(q, tokenizer) + answer_ids(a, tokenizer) for q, a in turns]
            elif mode == "described":
                caption = descriptions.get(sample.get("image"))
                if caption is None:
                    continue  # no description of this image: the instruct mode covers its turns
                pieces = [answer_ids(caption, tokenizer) + [i for q, a in turns for i in prompt_ids(q, tokenizer) + answer_ids(a, tokenizer)]]
            else:
                raise DataError(f"unknown mode {mode!r}; allowed: {list(CORPUS_MODES)}")
            self.sequences += [([tokenizer.bos_id] + p)[:max_len] for p in pieces]

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = torch.tensor(self.sequences[index], dtype=torch.long)
        labels = ids.clone()
        labels[0] = IGNORE_INDEX  # bos is context, never a prediction target
        return {"input_ids": ids, "labels": labels}


def captions_by_image(captions_json: Path) -> dict[str, str]:
    """image path (as the JSON writes it) -> the caption of that image."""
    return {
        s["image"]: strip_image_token(s["conversations"][1]["value"]) for s in load_llava_json(captions_json) if s.get("image")
    }


def _pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    """Right-pad 1-D tensors to the longest: (batch, longest)."""
    return pad_sequence(rows, batch_first=True, padding_value=value)


def collate_batch(items: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack the items of any dataset above into one batch.

    input_ids are padded with pad_id, labels with IGNORE_INDEX, and attention_mask
    marks real tokens with 1; text_ids are padded with pad_id with text_mask alike;
    pixel_values and has_image are stacked; region items add collate_region_words' fields;
    videos (and their latents) of one size are stacked.
    """
    if not items:
        raise DataError("collate_batch got an empty list of items")
    batch: dict[str, torch.Tensor] = {}
    if "input_ids" in items[0]:
        ids = [item["input_ids"] for item in items]
        batch["input_ids"] = _pad(ids, pad_id)
        batch["labels"] = _pad([item["labels"] for item in items], IGNORE_INDEX)
        batch["attention_mask"] = _pad([torch.ones_like(r) for r in ids], 0)
    if "pair_label" in items[0]:
        batch["pair_labels"] = torch.stack([item["pair_label"] for item in items])
    if "object_class" in items[0]:
        batch["object_classes"] = torch.stack([item["object_class"] for item in items])
    for key, mask_key in (("text_ids", "text_mask"), ("negative_ids", "negative_mask")):
        if key in items[0]:
            texts = [item[key] for item in items]
            batch[key] = _pad(texts, pad_id)
            batch[mask_key] = _pad([torch.ones_like(r) for r in texts], 0)
    if "pixel_values" in items[0]:
        batch |= collate_images(items)
    if "has_image" in items[0]:
        batch["has_image"] = torch.stack([item["has_image"] for item in items])
    if "region_owner" in items[0]:
        batch |= collate_region_words(items, pad_id)
    if "infill" in items[0]:  # OFA's image-infilling items
        batch["infill"] = torch.stack([item["infill"] for item in items])
    for key, what in (("video", "videos"), ("latent", "latents")):  # a batch of one size: data.video_clips' buckets
        if key in items[0]:
            sizes = {tuple(item[key].shape) for item in items}
            if len(sizes) > 1:
                raise DataError(f"collate_batch: the {what} of one batch must share a size (batch them by size); got {sorted(sizes)}")
            batch[what] = torch.stack([item[key] for item in items])
    return batch
