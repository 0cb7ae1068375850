"""KOSMOS-2.5's text pages: drawn with our bitmap font, read as text blocks with boxes or as markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.glyphs import draw_text, text_width
from components.data.grounded import located_blocks
from components.data.location_tokens import LocationGrid
from components.data.pages_dataset import page_captions_file, reading_file, word_boxes
from components.data.shapes_world import BACKGROUND_RGB, ShapesConfig
from components.data.text_pages import PAGE_WORDS, ROWS, PagesConfig, markdown_text, ocr_text, render_page, sample_page
from components.evaluation.reading import normalised_edit_distance, parse_blocks, score_reading
from components.training.stage_data import build_stage_dataset

CONFIG = PagesConfig(train=40, val=2, test=6)


@pytest.fixture(scope="module")
def pages_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pages") / "shapes"
    build_shapes_dataset(ShapesConfig(seed=2, image_size=32, train=4, val=2, test=2, max_shapes=2), 320, out, location_bins=8, pages=CONFIG)
    return out


def test_a_page_is_a_function_of_its_seed_split_and_index():
    assert sample_page(CONFIG, 0, "train", 3) == sample_page(CONFIG, 0, "train", 3)
    assert sample_page(CONFIG, 0, "train", 3) != sample_page(CONFIG, 1, "train", 3)
    assert np.array_equal(np.asarray(render_page(sample_page(CONFIG, 0, "test", 1))), np.asarray(render_page(sample_page(CONFIG, 0, "test", 1))))


def test_every_line_has_its_own_row_and_stays_on_the_page():
    row = CONFIG.image_size // ROWS
    for index in range(60):
        page = sample_page(CONFIG, 0, "train", index)
        rows = [block.box[1] // row for block in page.blocks]
        assert rows == sorted(set(rows))  # top to bottom, one block per row
        assert all(0 <= b.box[0] < b.box[2] <= page.size and 0 <= b.box[1] < b.box[3] <= page.size for b in page.blocks)
        assert all(b.kind == "heading" for b in page.blocks if b.box[1] < row) and all(w in PAGE_WORDS for b in page.blocks if b.kind != "heading" for w in b.text.split())


def test_glyphs_are_drawn_inside_their_blocks_and_bullets_only_before_items():
    for index in range(10):
        page = sample_page(CONFIG, 0, "train", index)
        ink = np.any(np.asarray(render_page(page)) != BACKGROUND_RGB, axis=-1)
        inside = np.zeros_like(ink)
        for block in page.blocks:
            x0, y0, x1, y1 = block.box
            inside[y0:y1, x0:x1] = True
            assert ink[y0:y1, x0:x1].any()
            left_of = ink[y0:y1, max(0, x0 - 4 * (page.size // 64) * 2) : x0]
            assert left_of.any() == (block.kind == "item")  # the bullet, two characters before the text
            inside[y0:y1, : x0] |= block.kind == "item"
        assert not (ink & ~inside).any()  # no stray ink


def test_the_font_refuses_what_it_cannot_draw():
    draw = ImageDraw.Draw(Image.new("RGB", (32, 8)))
    with pytest.raises(ValueError, match=r"no glyph for \['!'\]"):
        draw_text(draw, 0, 0, "hi!", 1, (255, 255, 255))
    assert text_width("ab", 2) == 14


def test_the_two_task_answers_say_the_same_lines():
    page = sample_page(CONFIG, 0, "train", 5)
    ocr, markdown = ocr_text(page).splitlines(), markdown_text(page).splitlines()
    assert len(ocr) == len(markdown) == len(page.blocks)
    for block, box_line, md_line in zip(page.blocks, ocr, markdown):
        assert box_line.endswith("]]" + block.text)
        assert md_line == {"heading": "# ", "item": "- ", "line": ""}[block.kind] + block.text


def test_word_regions_split_each_line_at_its_spaces():
    page = next(p for p in (sample_page(CONFIG, 0, "train", i) for i in range(40)) if any(" " in b.text for b in p.blocks))
    block = next(b for b in page.blocks if " " in b.text)
    (first, box_a), (second, box_b) = word_boxes(block)
    assert f"{first} {second}" == block.text and box_a[0] == block.box[0] and box_b[2] == block.box[2] and box_a[2] < box_b[0]


def test_the_dataset_writes_pages_captions_and_both_readings(pages_dataset: Path):
    captions = json.loads(page_captions_file(pages_dataset, "train").read_text())
    reading = json.loads(reading_file(pages_dataset, "train").read_text())
    assert len(captions) == 40 and len(reading) == 80
    assert [s["task"] for s in reading[:2]] == ["ocr", "md"] and reading[0]["image"] == captions[0]["image"]
    assert (pages_dataset / captions[0]["image"]).is_file()
    meta = json.loads((pages_dataset / "meta.json").read_text())
    assert meta["pages"]["counts"] == {"train": 40, "val": 2, "test": 6}
    assert "<ocr>" in load_dataset_tokenizer(pages_dataset).decode(load_dataset_tokenizer(pages_dataset).encode("<ocr>"))


def test_stages_read_pages_as_regions_text_and_located_blocks(pages_dataset: Path):
    tokenizer = load_dataset_tokenizer(pages_dataset)
    tower = build_stage_dataset("contrastive", pages_dataset, tokenizer, 64, 48, region_grid=4, corpus="pages")
    assert len(tower) == 40 and "region_owner" in tower[0]
    reader = build_stage_dataset("llava_instruct", pages_dataset, tokenizer, 64, 160, location_grid=LocationGrid(8), corpus="pages")
    assert len(reader) == 80
    text = tokenizer.decode(reader[0]["input_ids"].tolist())
    assert "<ocr>" in text and "<patch_index_" in text and "[[" not in text
    with pytest.raises(ValueError, match="does not read text pages"):
        build_stage_dataset("llava_interleaved", pages_dataset, tokenizer, 64, 160, corpus="pages")


def test_true_answers_score_one_and_wrong_ones_less(pages_dataset: Path):
    grid = LocationGrid(8)
    samples = json.loads(reading_file(pages_dataset, "test").read_text())
    truths = [located_blocks(s, grid)["conversations"][1]["value"] for s in samples]
    metrics, _ = score_reading(samples, truths, grid)
    assert all(metrics[k] == 1.0 for k in ("ocr_word_f1", "ocr_block_f1", "md_exact_match", "md_ned_score", "md_line_f1"))

    def shifted(answer: str) -> str:  # every box one row lower (the last row wraps to the top): text right, blocks wrong
        return re.sub(r"<patch_index_(\d+)>", lambda m: f"<patch_index_{(int(m[1]) + 8) % 64:04d}>", answer)

    ocr = [(s, a) for s, a in zip(samples, truths) if s["task"] == "ocr"]
    moved, _ = score_reading([s for s, _ in ocr], [shifted(a) for _, a in ocr], grid)
    assert moved["ocr_word_f1"] == 1.0 and moved["ocr_block_f1"] < 0.5


def test_blocks_parse_from_text_boxes_or_location_tokens():
    assert parse_blocks("[[100,200,300,400]]red circle\n\n[[9,9,1,1]]x") == [((0.1001001001001001, 0.2002002002002002, 0.3003003003003003, 0.4004004004004004), "red circle"), (None, "x")]
    grid = LocationGrid(4)
    assert parse_blocks("<object><patch_index_0000><patch_index_0005></object>two", grid) == [(grid.box(0, 5), "two")]
    assert normalised_edit_distance("abc", "abd") == pytest.approx(1 / 3) and normalised_edit_distance("", "") == 0.0
