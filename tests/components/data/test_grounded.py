"""KOSMOS-2 on the Shapes world: location tokens in the tokenizer, grounded captions, located boxes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.errors import DataError
from components.data.grounded import CAPTION_QUESTION, boxes_as_text, grounded_caption, located_answers
from components.data.llava_json import IGNORE_INDEX, load_llava_json
from components.data.location_tokens import GROUNDING, LocationGrid, grid_of
from components.data.shapes_annotations import box_iou, parse_box
from components.data.shapes_world import ShapesConfig
from components.evaluation.grounded_captions import score_grounded_captions
from components.training.stage_data import build_stage_dataset

GRID = LocationGrid(16)


@pytest.fixture(scope="module")
def grounded_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grounded") / "shapes"
    build_shapes_dataset(ShapesConfig(seed=5, image_size=64, train=24, val=4, test=8, max_shapes=3), 320, out, location_bins=16)
    return out


def test_the_tokenizer_holds_every_location_token_whole_and_decodes_it(grounded_dataset: Path):
    tok = load_dataset_tokenizer(grounded_dataset)
    assert grid_of(tok.vocabulary()) == GRID
    text = f"{GROUNDING}<phrase> a red circle</phrase><object><patch_index_0017><patch_index_0255></object>"
    ids = tok.encode(text)
    assert len(ids) == 1 + 1 + len(tok.encode(" a red circle")) + 1 + 4
    assert tok.decode(ids) == text  # not special: they survive decoding


def test_a_grounded_caption_reads_back_to_its_phrases_and_boxes(grounded_dataset: Path):
    for sample in load_llava_json(grounded_dataset / "captions_train.json"):
        grounded = grounded_caption(sample, GRID)
        assert grounded["conversations"][0]["value"].endswith(CAPTION_QUESTION)
        text, entities = GRID.read(grounded["conversations"][1]["value"])
        assert text == sample["conversations"][1]["value"]
        assert [p for p, _ in entities] == [r["phrase"] for r in sample["regions"]]
        for (_, (box,)), region in zip(entities, sample["regions"]):
            assert box_iou(box, region["box"]) > 0.4  # corners at cell centres: a 4-pixel grid on 64 pixels


def test_boxes_become_location_tokens_and_back_within_a_cell(grounded_dataset: Path):
    sample = next(s for s in load_llava_json(grounded_dataset / "instruct_train.json") if "grounding" in s["question_types"])
    located = located_answers(sample, GRID)
    k = sample["question_types"].index("grounding")
    truth, answer = sample["conversations"][2 * k + 1]["value"], located["conversations"][2 * k + 1]["value"]
    assert answer.startswith("<object><patch_index_") and answer.endswith("</object>")
    back = parse_box(boxes_as_text(answer, GRID))
    assert all(abs(a - b) <= 999 / 16 for a, b in zip(back, parse_box(truth)))
    kept = [2 * j + 1 for j, kind in enumerate(sample["question_types"]) if kind != "grounding"]
    assert [located["conversations"][i]["value"] for i in kept] == [sample["conversations"][i]["value"] for i in kept]
    assert boxes_as_text("left", GRID) == "left"


def test_a_stage_trains_on_the_location_tokens(grounded_dataset: Path):
    tok = load_dataset_tokenizer(grounded_dataset)
    data = build_stage_dataset("llava_multitask", grounded_dataset, tok, 64, 320, location_grid=GRID)
    cell_ids = {tok.vocabulary()[t] for t in GRID.tokens}
    targets = {int(i) for item in (data[n] for n in range(len(data))) for i, l in zip(item["input_ids"], item["labels"]) if l != IGNORE_INDEX}
    assert targets & cell_ids and tok.vocabulary()[GROUNDING] not in targets  # the prompt asks, the answer locates
    with pytest.raises(ValueError, match="location tokens ground a LLaVA-style model's captions and boxes; 'contrastive' has none"):
        build_stage_dataset("contrastive", grounded_dataset, tok, 64, 48, location_grid=GRID)


def test_grounded_captions_are_scored_against_the_scene(grounded_dataset: Path):
    samples = load_llava_json(grounded_dataset / "captions_test.json")
    truth = [grounded_caption(s, GRID)["conversations"][1]["value"] for s in samples]
    perfect, _ = score_grounded_captions(samples, truth, GRID)
    assert perfect["grounded_phrase_recall"] == 1.0 and perfect["grounded_recall"] >= 0.9 and perfect["grounded_precision"] >= 0.9
    plain, _ = score_grounded_captions(samples, [s["conversations"][1]["value"] for s in samples], GRID)
    assert plain["grounded_recall"] == 0.0 and plain["grounded_precision"] == 0.0
    corner = "<object><patch_index_0000><patch_index_0017></object>"  # the first box of each caption a corner cell's
    moved = [re.sub(r"<object>.*?</object>", corner, t, count=1) for t in truth]
    assert score_grounded_captions(samples, moved, GRID)[0]["grounded_recall"] < perfect["grounded_recall"]


def test_a_tokenizer_without_a_square_grid_is_refused():
    assert grid_of({"a": 0}) is None
    with pytest.raises(DataError, match="3 location tokens"):
        grid_of({GROUNDING: 0, "<patch_index_0000>": 1, "<patch_index_0001>": 2, "<patch_index_0002>": 3})
