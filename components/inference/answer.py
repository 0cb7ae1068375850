"""Answer questions about images with a LLaVA model: batched, left-padded, greedy, KV-cached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from components.data.llava_images import ImageProcessor, collate_images
from components.data.tokenizer import TextTokenizer


class AnsweringModel(Protocol):
    """A model that answers from token ids and images: LlavaModel, FlamingoModel."""

    def eval(self) -> AnsweringModel: ...

    def generate(
        self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor,
        max_new_tokens: int, eos_token_id: int, use_cache: bool = True, image_sizes: Tensor | None = None,
    ) -> list[list[int]]: ...


@torch.no_grad()
def answer_prompts(
    model: AnsweringModel,
    tokenizer: TextTokenizer,
    prompts: list[list[int]],
    images: list[dict[str, torch.Tensor] | None],
    processor: ImageProcessor,
    batch_size: int = 64,
    max_new_tokens: int = 24,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """prompts: token ids ending where the answer starts (see encode_prompt); images: what
    `processor` made of each prompt's image, or None (a prompt with several images, for
    FlamingoModel: their pixel_values stacked (M, 3, S, S))."""
    model.eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths batch together
    answers = [""] * len(prompts)
    blank = processor(None)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        ids = torch.full((len(chunk), width), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):  # left padding: every prompt ends where generation starts
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        has_image = torch.tensor([images[i] is not None for i in chunk])
        pixels = collate_images([images[i] if images[i] is not None else blank for i in chunk])
        outputs = model.generate(
            ids, mask, pixels["pixel_values"], has_image, max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_id,
            image_sizes=pixels.get("image_sizes"),
        )
        for i, out in zip(chunk, outputs):
            answers[i] = tokenizer.decode(out).strip()
        if progress:
            progress(min(start + batch_size, len(order)), len(order))
    return answers
