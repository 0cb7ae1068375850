"""KOSMOS-2's grounded data from the Shapes world: phrases linked to location tokens.

Captions become grounded captions, asked for by the `<grounding>` prompt: every
region's phrase is marked and followed by the location tokens of its box. In the
conversations, a grounding question (referring expression comprehension) is
answered by the location tokens of the box instead of its coordinates in text.
The evaluation reads location tokens back into boxes (`boxes_as_text`), so boxes
are scored the same way whichever form the model writes them in; OFA's coordinate
bins (data.coordinate_bins) are read and written by the same functions.
"""

from __future__ import annotations

import re

from components.data.coordinate_bins import CoordinateBins
from components.data.location_tokens import GROUNDING, LocationGrid
from components.data.shapes_annotations import BOX_SCALE, parse_box
from components.data.tokenizer import IMAGE_TOKEN

CAPTION_QUESTION = f"{GROUNDING} Describe the image."
"""The question of a grounded caption, after the image."""
GROUNDING_TYPE = "grounding"
BoxTokens = LocationGrid | CoordinateBins
"""Either way of writing a box as tokens: KOSMOS-2's corner cells or OFA's coordinate bins (the same location/read)."""
_TEXT_BOX = re.compile(r"\[\[(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})\]\]")


def grounded_caption(sample: dict, grid: LocationGrid) -> dict:
    """A caption sample as a grounded-caption conversation: the `<grounding>` question, then the caption with
    each of its `regions` (phrase, normalised box) marked and located."""
    regions = [(region["phrase"], [region["box"]]) for region in sample.get("regions", [])]
    caption = sample["conversations"][1]["value"]
    return {**sample, "conversations": [
        {"from": "human", "value": f"{IMAGE_TOKEN}\n{CAPTION_QUESTION}"},
        {"from": "gpt", "value": grid.ground(caption, regions)},
    ]}


def located_answers(sample: dict, grid: BoxTokens) -> dict:
    """A conversation whose grounding answers ('[[x0,y0,x1,y1]]') are written as location tokens."""
    types = sample.get("question_types") or []
    turns = [dict(turn) for turn in sample["conversations"]]
    for k, kind in enumerate(types):
        if kind == GROUNDING_TYPE and (box := parse_box(turns[2 * k + 1]["value"])) is not None:
            turns[2 * k + 1]["value"] = grid.location([tuple(v / BOX_SCALE for v in box)])
    return {**sample, "conversations": turns}


def located_blocks(sample: dict, grid: BoxTokens) -> dict:
    """A conversation whose answers' boxes ('[[x0,y0,x1,y1]]', anywhere in them: KOSMOS-2.5's text blocks)
    are all written as location tokens."""
    def located(match: re.Match) -> str:
        return grid.location([tuple(int(v) / BOX_SCALE for v in match.groups())])

    turns = [{**turn, "value": _TEXT_BOX.sub(located, turn["value"])} if turn["from"] == "gpt" else turn
             for turn in sample["conversations"]]
    return {**sample, "conversations": turns}


def boxes_as_text(answer: str, grid: BoxTokens) -> str:
    """The first box an answer's location tokens name, as '[[x0,y0,x1,y1]]' text; an answer without
    location tokens is returned as it is."""
    _, entities = grid.read(answer)
    if not entities:
        return answer
    x0, y0, x1, y1 = (min(BOX_SCALE, max(0, round(v * BOX_SCALE))) for v in entities[0][1][0])
    return f"[[{x0:03d},{y0:03d},{x1:03d},{y1:03d}]]"
