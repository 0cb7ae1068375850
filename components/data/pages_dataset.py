"""Writing the text pages of a Shapes dataset (KOSMOS-2.5's data) beside its scenes.

Layout under the dataset directory:

    pages/{split}/page_{split}_{index:06d}.png
    page_captions_{split}.json  each page with what it says as its caption and every line as a region
                                (a box and its words): image-text pairs for a contrastive tower
    reading_{split}.json        two samples per page, one per task prompt: `<ocr>` answered by the
                                spatially-aware text blocks, `<md>` by the markdown (see text_pages)

Every sample keeps its `page` (blocks, kinds, pixel boxes) for evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from components.data.glyphs import ADVANCE, GLYPH_HEIGHT, text_width
from components.data.shapes_world import SPLITS
from components.data.text_pages import (
    TASKS,
    Page,
    TextBlock,
    PagesConfig,
    markdown_text,
    ocr_text,
    plain_text,
    render_page,
    sample_page,
)

PAGE_CAPTION_PROMPT = "What does the page say?"
READING_ANSWERS: dict[str, Callable[[Page], str]] = {"ocr": ocr_text, "md": markdown_text}


def page_captions_file(dataset_dir: Path, split: str) -> Path:
    return Path(dataset_dir) / f"page_captions_{split}.json"


def reading_file(dataset_dir: Path, split: str) -> Path:
    return Path(dataset_dir) / f"reading_{split}.json"


def page_id(split: str, index: int) -> str:
    return f"page_{split}_{index:06d}"


def page_relpath(split: str, index: int) -> str:
    return f"pages/{split}/{page_id(split, index)}.png"


def page_caption_sample(page: Page, split: str, index: int) -> dict:
    """What the page says as its caption, and every word of it as a region of its own: a tower aligned to these
    regions learns which word each patch shows, not only which line."""
    size = page.size
    regions = [{"box": [round(v / size, 4) for v in box], "phrase": word} for block in page.blocks for word, box in word_boxes(block)]
    return _page_sample(page, split, index, page_id(split, index), PAGE_CAPTION_PROMPT, plain_text(page), regions=regions)


def word_boxes(block: TextBlock) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Each word of a block with the pixel box of its glyphs."""
    x0, y0, _, y1 = block.box
    scale = (y1 - y0) // GLYPH_HEIGHT
    boxes, start = [], 0
    for word in block.text.split(" "):
        left = x0 + start * ADVANCE * scale
        boxes.append((word, (left, y0, left + text_width(word, scale), y1)))
        start += len(word) + 1
    return boxes


def reading_samples(page: Page, split: str, index: int) -> list[dict]:
    """The page read by each task prompt: [<ocr> sample, <md> sample]."""
    return [
        _page_sample(page, split, index, f"{page_id(split, index)}_{task}", TASKS[task], answer(page), task=task)
        for task, answer in READING_ANSWERS.items()
    ]


def _page_sample(page: Page, split: str, index: int, sample_id: str, prompt: str, answer: str, **fields) -> dict:
    """A LLaVA-JSON sample of one page: the prompt after the image, the answer, the page itself and `fields`."""
    return {
        "id": sample_id,
        "image": page_relpath(split, index),
        "conversations": [{"from": "human", "value": f"<image>\n{prompt}"}, {"from": "gpt", "value": answer}],
        **fields,
        "page": page.to_dict(),
    }


def write_pages(config: PagesConfig, seed: int, out_dir: Path, write_json: Callable[[Path, object], None]) -> dict[str, int]:
    """Render every split's pages and write their JSON files; returns the pages per split."""
    counts = {}
    for split in SPLITS:
        (Path(out_dir) / "pages" / split).mkdir(parents=True, exist_ok=True)
        captions, reading = [], []
        for index in range(config.split_size(split)):
            page = sample_page(config, seed, split, index)
            render_page(page).save(Path(out_dir) / page_relpath(split, index), format="PNG")
            captions.append(page_caption_sample(page, split, index))
            reading += reading_samples(page, split, index)
        write_json(page_captions_file(out_dir, split), captions)
        write_json(reading_file(out_dir, split), reading)
        counts[split] = len(captions)
    return counts
