"""KOSMOS-2's location tokens against HF transformers' Kosmos-2 processor functions."""

from __future__ import annotations

import random

import pytest

from components.data.errors import DataError
from components.data.location_tokens import GROUNDING, LocationGrid

kosmos2 = pytest.importorskip("transformers.models.kosmos2.processing_kosmos2")


def random_boxes(count: int, seed: int = 0) -> list[tuple[float, float, float, float]]:
    rng = random.Random(seed)
    boxes = []
    while len(boxes) < count:
        x0, x1 = sorted(rng.random() for _ in range(2))
        y0, y1 = sorted(rng.random() for _ in range(2))
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    # corners on cell edges and the image's edges, where rounding decides
    return boxes + [(0.0, 0.0, 1.0, 1.0), (0.25, 0.5, 0.5, 0.75), (1 / 32, 2 / 32, 3 / 32, 4 / 32), (0.0, 0.9, 0.03, 1.0)]


@pytest.mark.parametrize("bins", [32, 16, 7])
def test_boxes_to_cells_and_back_match_hf(bins: int):
    grid = LocationGrid(bins)
    for box in random_boxes(500, seed=bins):
        cells = grid.cells(box)
        assert cells == kosmos2.coordinate_to_patch_index(box, bins), box
        assert grid.box(*cells) == pytest.approx(kosmos2.patch_index_to_coordinate(*cells, bins)), cells


def test_a_box_read_back_lies_within_a_cell_of_the_original():
    grid = LocationGrid(32)
    for box in random_boxes(300):
        back = grid.box(*grid.cells(box))
        assert all(abs(a - b) <= 1 / 32 + 1e-9 for a, b in zip(box, back)), (box, back)


def test_a_grounded_caption_reads_back_as_hf_reads_it():
    grid = LocationGrid(32)
    caption = "a large red circle left of a small blue square and a red circle"
    regions = [("a large red circle", [(0.1, 0.2, 0.5, 0.6)]), ("a small blue square", [(0.6, 0.6, 0.8, 0.9)]),
               ("a red circle", [(0.1, 0.1, 0.2, 0.2), (0.7, 0.1, 0.9, 0.3)])]
    text = GROUNDING + " " + grid.ground(caption, regions)
    assert text.count("<patch_index_") == 8 and "</delimiter_of_multi_objects/>" in text
    plain, entities = grid.read(text)
    hf_plain, hf_entities = kosmos2.clean_text_and_extract_entities_with_bboxes(text, 32)
    assert plain == hf_plain == caption
    assert entities == [(name, boxes) for name, _, boxes in hf_entities]  # multiples of 1/64: exact


def test_an_object_without_a_phrase_is_named_by_its_tokens():
    grid = LocationGrid(32)
    text = "look: " + grid.location([(0.0, 0.0, 0.5, 0.5)])
    (entity,) = grid.read(text)[1]
    (hf_entity,) = kosmos2.clean_text_and_extract_entities_with_bboxes(text, 32)[1]
    # HF names it by the cells' numbers unpadded; here by the tokens themselves
    assert entity[0] == "<patch_index_0000><patch_index_0495>" and entity[1] == hf_entity[2]


def test_the_grid_names_every_cell_once_and_refuses_what_is_off_it():
    grid = LocationGrid(32)
    assert len(set(grid.tokens)) == 1024 and grid.tokens[0] == "<patch_index_0000>" and grid.tokens[-1] == "<patch_index_1023>"
    with pytest.raises(ValueError, match="not on a 32x32 grid"):
        grid.token(1024)
    with pytest.raises(DataError, match="normalised"):
        grid.cells((0.5, 0.5, 0.4, 0.9))
    with pytest.raises(DataError, match="not in the caption"):
        grid.ground("a red circle", [("a blue square", [(0.1, 0.1, 0.2, 0.2)])])
    with pytest.raises(DataError, match="not on the 4x4 grid"):
        LocationGrid(4).read("<object><patch_index_0000><patch_index_0016></object>")
    with pytest.raises(ValueError, match="bins=0"):
        LocationGrid(0)
