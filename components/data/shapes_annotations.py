"""Text for a Shapes scene: a caption (stage 1) and a question-answer conversation (stage 2).

Everything here is a pure function of the scene and a numpy Generator, so the text
of a scene is as reproducible as its image. Boxes are written in the 000-999
normalised format used by grounding models: `[[x0,y0,x1,y1]]`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from components.data.shapes_world import SIZE_FRACTION, Box, Scene, ShapeObject, position_words

CAPTION_PROMPTS: tuple[str, ...] = (
    "Describe the image briefly.",
    "What is in this picture?",
    "Give a short description of the image.",
    "Summarize the picture in a few words.",
    "What do you see?",
)
QUESTION_TYPES: tuple[str, ...] = ("colour", "shape", "count", "position", "existence", "grounding")
MIN_TURNS, MAX_TURNS = 3, 5
BOX_SCALE = 999  # normalised coordinates run 0..BOX_SCALE

_NUMBER = r"\s*(\d{1,3})\s*"
_BOX_PATTERN = re.compile(r"\[\s*\[?" + ",".join([_NUMBER] * 4) + r"\]")


@dataclass(frozen=True)
class QuestionAnswer:
    """One turn of an instruction conversation."""

    question_type: str
    question: str
    answer: str


def caption(scene: Scene) -> str:
    """The objects left to right: 'a ..., a ... and a ...' (lowercase, no period)."""
    return _join([_words(o, scene) for o in _left_to_right(scene)])


HARD_NEGATIVE_KINDS: tuple[str, ...] = ("shape", "colour", "size", "position")
POSITION_WORDS: tuple[str, ...] = tuple(
    "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"
    for row in ("top", "middle", "bottom")
    for col in ("left", "centre", "right")
)


def hard_negative_captions(
    scene: Scene, rng: np.random.Generator, colours: Sequence[str], shapes: Sequence[str]
) -> list[str]:
    """Captions that are wrong about one thing only, one per kind in HARD_NEGATIVE_KINDS:
    one object's shape, the colours (two objects swap theirs, or a lone object gets
    another), one object's size, one object's place.

    Contrastive training with these as extra negatives (NegCLIP) cannot be solved by a
    bag of colour words: the image embedding has to bind each shape to its colour and place.
    """
    words = [_words(o, scene) for o in _left_to_right(scene)]
    n = len(words)

    def changed(index: int, field: str, value: str) -> str:
        edited = [dict(w) for w in words]
        edited[index][field] = value
        return _join(edited)

    def other(options: Sequence[str], current: str) -> str:
        choices = [o for o in options if o != current]
        return choices[int(rng.integers(len(choices)))]

    i = int(rng.integers(n))
    negatives = [changed(i, "shape", other(shapes, words[i]["shape"]))]
    if n >= 2:
        a, b = (int(k) for k in rng.choice(n, size=2, replace=False))
        swapped = [dict(w) for w in words]
        swapped[a]["colour"], swapped[b]["colour"] = words[b]["colour"], words[a]["colour"]
        negatives.append(_join(swapped))
    else:
        negatives.append(changed(0, "colour", other(colours, words[0]["colour"])))
    i = int(rng.integers(n))
    negatives.append(changed(i, "size", other(tuple(SIZE_FRACTION), words[i]["size"])))
    i = int(rng.integers(n))
    negatives.append(changed(i, "where", other(POSITION_WORDS, words[i]["where"])))
    return negatives


def _left_to_right(scene: Scene) -> list[ShapeObject]:
    return sorted(scene.objects, key=lambda o: o.centre[0])


def _words(obj: ShapeObject, scene: Scene) -> dict[str, str]:
    return {"size": obj.size, "colour": obj.colour, "shape": obj.shape, "where": position_words(obj, scene.width, scene.height)}


def _join(objects: Sequence[dict[str, str]]) -> str:
    """'a large red circle at the top left, a ... and a ...'."""
    parts = [f"a {o['size']} {o['colour']} {o['shape']} at the {o['where']}" for o in objects]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def caption_prompt(rng: np.random.Generator) -> str:
    return CAPTION_PROMPTS[int(rng.integers(len(CAPTION_PROMPTS)))]


def normalise_box(box_px: Box, width: int, height: int | None = None) -> Box:
    """Pixel box -> 0..999 integers: x / width * 999, y / height * 999, rounded."""
    x0, y0, x1, y1 = box_px
    h = height or width
    return tuple(round(v * BOX_SCALE) for v in (x0 / width, y0 / h, x1 / width, y1 / h))  # type: ignore[return-value]


def format_box(box_px: Box, width: int, height: int | None = None) -> str:
    """'[[062,125,312,406]]': the normalised box, zero-padded to three digits."""
    return "[[" + ",".join(f"{v:03d}" for v in normalise_box(box_px, width, height)) + "]]"


def parse_box(text: str) -> Box | None:
    """The first '[[x0,y0,x1,y1]]' (or '[x0,...]') in `text`, or None if there is no
    well-formed box with coordinates in 0..999 and x0 <= x1, y0 <= y1."""
    match = _BOX_PATTERN.search(text)
    if match is None:
        return None
    x0, y0, x1, y1 = (int(v) for v in match.groups())
    if max(x0, y0, x1, y1) > BOX_SCALE or x0 > x1 or y0 > y1:
        return None
    return x0, y0, x1, y1


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0.0 when both are empty."""
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _name(obj: ShapeObject) -> str:
    return f"{obj.colour} {obj.shape}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def candidate_questions(
    scene: Scene, colours: Sequence[str], shapes: Sequence[str]
) -> dict[str, list[QuestionAnswer]]:
    """Every question of each type that has one correct answer for this scene.

    Existence questions are split in two keys, 'existence_yes' and 'existence_no', so
    the caller can balance them; the negatives are hard: their colour or their shape
    occurs in the scene, but never the two together.
    """
    objects = scene.objects
    shape_counts = {s: sum(o.shape == s for o in objects) for s in shapes}
    present = {(o.colour, o.shape) for o in objects}
    scene_colours = {o.colour for o in objects}
    scene_shapes = {o.shape for o in objects}

    def qa(kind: str, question: str, answer: str) -> QuestionAnswer:
        return QuestionAnswer(kind, question, answer)

    return {
        "colour": [
            qa("colour", f"What colour is the {o.shape}?", o.colour)
            for o in objects
            if shape_counts.get(o.shape, 0) == 1
        ],
        "shape": [qa("shape", f"What shape is the {o.colour} object?", o.shape) for o in objects],
        "count": [qa("count", "How many shapes are there?", str(len(objects)))],
        "position": [
            qa(
                "position",
                f"Is the {_name(a)} left or right of the {_name(b)}?",
                "left" if a.centre[0] < b.centre[0] else "right",
            )
            for a in objects
            for b in objects
            if a is not b
        ],
        "existence_yes": [
            qa("existence", f"Is there {_article(o.colour)} {_name(o)}?", "yes") for o in objects
        ],
        "existence_no": [
            qa("existence", f"Is there {_article(c)} {c} {s}?", "no")
            for c in colours
            for s in shapes
            if (c, s) not in present and (c in scene_colours or s in scene_shapes)
        ],
        "grounding": [
            qa(
                "grounding",
                f"Where is the {_name(o)}? Answer with a bounding box.",
                format_box(o.box, scene.width, scene.height),
            )
            for o in objects
        ],
    }


def conversation(
    scene: Scene, rng: np.random.Generator, colours: Sequence[str], shapes: Sequence[str]
) -> list[QuestionAnswer]:
    """3-5 turns; each turn's type is drawn uniformly among the types that still have
    an unasked question, so no question repeats within a conversation."""
    pools = candidate_questions(scene, colours, shapes)
    asked: set[str] = set()
    turns: list[QuestionAnswer] = []
    for _ in range(int(rng.integers(MIN_TURNS, MAX_TURNS + 1))):
        remaining = {
            kind: [q for q in pool if q.question not in asked] for kind, pool in pools.items()
        }
        kinds = [k for k in QUESTION_TYPES if _type_pool(remaining, k, rng=None)]
        if not kinds:
            break
        kind = kinds[int(rng.integers(len(kinds)))]
        pool = _type_pool(remaining, kind, rng=rng)
        turn = pool[int(rng.integers(len(pool)))]
        asked.add(turn.question)
        turns.append(turn)
    return turns


def _type_pool(
    remaining: dict[str, list[QuestionAnswer]], kind: str, rng: np.random.Generator | None
) -> list[QuestionAnswer]:
    """The unasked questions of `kind`; for existence, a fair coin picks yes or no
    (given an rng) and falls back to the other answer when one side is used up."""
    if kind != "existence":
        return remaining[kind]
    yes, no = remaining["existence_yes"], remaining["existence_no"]
    if rng is None:
        return yes + no
    first, second = (yes, no) if rng.integers(2) == 0 else (no, yes)
    return first or second
