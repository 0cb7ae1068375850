"""OFA's data: every task of the Shapes world as an instruction and its answer, in one vocabulary.

Tasks (each answer a token sequence; boxes as coordinate-bin tokens, see coordinate_bins):
  caption         "what does the image describe?"                           -> the caption
  vqa             a conversation's question, after its earlier turns        -> the answer (a box as bins)
  grounding       'which region does the text "a small red circle" describe?' -> the object's box
  region_caption  "what does the region <bin..><bin..><bin..><bin..> describe?" -> its phrase
  infilling       "what is the image in the middle part?"                    -> the codes of the image's middle
                  (filled in by the objective from the image tokenizer; here `infill` marks the item)
Items are encoded as the answering models' prompts are (encode_prompt), so evaluation and serving ask
an OFA model what they ask a LLaVA one. Each epoch draws every task's share of items by its weight,
with a seeded generator: the same recipe trains on the same items.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from components.data.conversation import IGNORE_INDEX, answer_ids, encode_prompt, normalised_turns
from components.data.coordinate_bins import CoordinateBins
from components.data.grounded import located_answers
from components.data.llava_images import ImageProcessor
from components.data.llava_json import load_llava_json, resolve_image
from components.data.tokenizer import IMAGE_TOKEN, TextTokenizer

OFA_TASKS = ("caption", "vqa", "grounding", "region_caption", "infilling")
CAPTION_INSTRUCTION = "what does the image describe?"
INFILL_INSTRUCTION = "what is the image in the middle part?"


def grounding_instruction(phrase: str) -> str:
    return f'which region does the text "{phrase}" describe?'


def region_caption_instruction(location: str) -> str:
    return f"what does the region {location} describe?"


class OfaInstructions(Dataset):
    """Items: pixel_values, has_image, input_ids (the instruction prompt), labels (the answer + eos), infill."""

    def __init__(
        self, captions_json: Path, instruct_json: Path, image_root: Path, tokenizer: TextTokenizer, image_size: int,
        bins: CoordinateBins, weights: Mapping[str, float], infill_codes: int, max_len: int, seed: int = 0,
    ) -> None:
        """`weights`: each task's share of an epoch (missing tasks: none); `infill_codes`: the number of code
        tokens of an image's middle (the labels an infilling item holds places for)."""
        unknown = sorted(set(weights) - set(OFA_TASKS))
        if unknown:
            raise ValueError(f"unknown OFA tasks {unknown} (allowed: {', '.join(OFA_TASKS)})")
        captions, conversations = load_llava_json(captions_json), load_llava_json(instruct_json)
        self.root, self.tokenizer, self.max_len = Path(image_root), tokenizer, max_len
        self.images = ImageProcessor(image_size)
        self.infill_codes = infill_codes
        image = f"{IMAGE_TOKEN}\n"
        specs: dict[str, list[tuple]] = {task: [] for task in OFA_TASKS}
        for sample in captions:
            specs["caption"].append((sample["image"], (), image + CAPTION_INSTRUCTION, sample["conversations"][1]["value"]))
            specs["infilling"].append((sample["image"], (), image + INFILL_INSTRUCTION, None))
            for region in sample.get("regions", []):
                location = bins.location([region["box"]])
                specs["grounding"].append((sample["image"], (), image + grounding_instruction(region["phrase"]), location))
                specs["region_caption"].append((sample["image"], (), image + region_caption_instruction(location), region["phrase"]))
        for sample in conversations:
            turns = normalised_turns(located_answers(sample, bins))
            for k, (question, answer) in enumerate(turns):
                specs["vqa"].append((sample["image"], tuple(turns[:k]), question, answer))
        total = sum(len(specs[task]) for task in weights)
        weight_sum = sum(weights.values())
        if not total or weight_sum <= 0:
            raise ValueError(f"no OFA items: the weighted tasks {dict(weights)} have no samples in {captions_json} and {instruct_json}")
        rng = np.random.default_rng(seed)
        self.items: list[tuple] = []
        for task in OFA_TASKS:
            if weights.get(task, 0) > 0 and specs[task]:
                count = max(1, round(total * weights[task] / weight_sum))
                picks = rng.choice(len(specs[task]), size=count, replace=count > len(specs[task]))
                self.items += [(task, *specs[task][int(i)]) for i in picks]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        task, image, history, question, answer = self.items[index]
        prompt = encode_prompt(list(history), question, self.tokenizer)[: self.max_len]
        if task == "infilling":
            labels = [IGNORE_INDEX] * (self.infill_codes + 1)  # the codes and eos, filled in by the objective
        else:
            labels = answer_ids(answer, self.tokenizer)[: self.max_len]
        return {
            **self.images(resolve_image(self.root, image)),
            "has_image": torch.tensor(True),
            "input_ids": torch.tensor(prompt, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "infill": torch.tensor(task == "infilling"),
        }
