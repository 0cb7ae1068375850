from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from components.data.shapes_annotations import (
    CAPTION_PROMPTS,
    QUESTION_TYPES,
    box_iou,
    caption,
    caption_prompt,
    conversation,
    format_box,
    hard_negative_captions,
    normalise_box,
    parse_box,
)
from components.data.shapes_world import Scene, ShapeObject, ShapesConfig, sample_scene

CONFIG = ShapesConfig(seed=5, max_shapes=4)


def _scene(*objects: tuple[str, str, str, tuple[int, int, int, int]]) -> Scene:
    return Scene.square(64, tuple(ShapeObject(*o) for o in objects))


RED_CIRCLE = ("red", "circle", "large", (2, 2, 20, 20))
BLUE_SQUARE = ("blue", "square", "small", (50, 50, 60, 60))
GREEN_TRIANGLE = ("green", "triangle", "small", (27, 27, 37, 37))


def test_caption_lists_objects_left_to_right() -> None:
    assert caption(_scene(RED_CIRCLE)) == "a large red circle at the top left"
    two = "a large red circle at the top left and a small blue square at the bottom right"
    assert caption(_scene(BLUE_SQUARE, RED_CIRCLE)) == two
    assert caption(_scene(RED_CIRCLE, BLUE_SQUARE)) == two
    assert caption(_scene(GREEN_TRIANGLE, BLUE_SQUARE, RED_CIRCLE)) == (
        "a large red circle at the top left, a small green triangle at the centre "
        "and a small blue square at the bottom right"
    )


def _objects(text: str) -> list[tuple[str, ...]]:
    """'a large red circle at the top left and ...' -> [('large', 'red', 'circle', 'top left'), ...]."""
    return [m for m in re.findall(r"a (\w+) (\w+) (\w+) at the ([a-z ]+?)(?=,| and |$)", text)]


@pytest.mark.parametrize("seed", range(20))
def test_each_hard_negative_is_wrong_in_exactly_its_one_detail(seed: int) -> None:
    scene = sample_scene(CONFIG, "train", seed)
    rng = np.random.default_rng(seed)
    true = _objects(caption(scene))
    negatives = hard_negative_captions(scene, rng, CONFIG.colours, CONFIG.shapes)
    assert len(negatives) == 4 and caption(scene) not in negatives
    for kind, field, negative in zip(("shape", "colour", "size", "position"), (2, 1, 0, 3), negatives):
        wrong = _objects(negative)
        assert len(wrong) == len(true), (kind, negative)
        differing = [(t, w) for t, w in zip(true, wrong) if t != w]
        if kind == "colour" and len(true) >= 2:  # two objects swapped colours; all else as it was
            assert len(differing) == 2 and sorted(t[1] for t, _ in differing) == sorted(w[1] for _, w in differing)
        else:
            assert len(differing) == 1, (kind, negative)
        for t, w in differing:
            assert [i for i in range(4) if t[i] != w[i]] == [field], (kind, negative)
            if kind == "colour" and len(true) == 1:
                assert w[1] in CONFIG.colours


def test_hard_negatives_are_a_function_of_the_rng() -> None:
    scene = sample_scene(CONFIG, "train", 3)
    first = hard_negative_captions(scene, np.random.default_rng(7), CONFIG.colours, CONFIG.shapes)
    assert first == hard_negative_captions(scene, np.random.default_rng(7), CONFIG.colours, CONFIG.shapes)


def test_caption_prompt_is_one_of_the_fixed_prompts_and_varies() -> None:
    rng = np.random.default_rng(0)
    prompts = {caption_prompt(rng) for _ in range(100)}
    assert prompts == set(CAPTION_PROMPTS)


def _oracle(scene: Scene, question: str) -> str:
    """Answer a question from the scene alone, independently of the generator."""
    objs = scene.objects
    by_name = {f"{o.colour} {o.shape}": o for o in objs}
    if m := re.fullmatch(r"What colour is the (\w+)\?", question):
        (match,) = [o for o in objs if o.shape == m[1]]  # must be unique
        return match.colour
    if m := re.fullmatch(r"What shape is the (\w+) object\?", question):
        return next(o.shape for o in objs if o.colour == m[1])
    if question == "How many shapes are there?":
        return str(len(objs))
    if m := re.fullmatch(r"Is the (\w+ \w+) left or right of the (\w+ \w+)\?", question):
        a, b = by_name[m[1]], by_name[m[2]]
        return "left" if (a.box[0] + a.box[2]) < (b.box[0] + b.box[2]) else "right"
    if m := re.fullmatch(r"Is there an? (\w+ \w+)\?", question):
        return "yes" if m[1] in by_name else "no"
    if m := re.fullmatch(r"Where is the (\w+ \w+)\? Answer with a bounding box\.", question):
        box = by_name[m[1]].box
        return "[[" + ",".join(f"{round(v * 999 / 64):03d}" for v in box) + "]]"
    raise AssertionError(f"unexpected question {question!r}")


def _conversations(count: int) -> list[tuple[Scene, list]]:
    out = []
    for index in range(count):
        scene = sample_scene(CONFIG, "train", index)
        rng = np.random.default_rng(index)
        out.append((scene, conversation(scene, rng, CONFIG.colours, CONFIG.shapes)))
    return out


def test_every_answer_is_correct_for_its_scene() -> None:
    kinds = Counter()
    for scene, turns in _conversations(400):
        assert 3 <= len(turns) <= 5
        questions = [t.question for t in turns]
        assert len(set(questions)) == len(questions), questions
        for turn in turns:
            assert turn.answer == _oracle(scene, turn.question), (scene, turn)
            kinds[turn.question_type] += 1
    assert set(kinds) == set(QUESTION_TYPES)
    assert min(kinds.values()) > 100


def test_existence_is_balanced_and_negatives_are_hard() -> None:
    answers = Counter()
    for scene, turns in _conversations(400):
        colours = {o.colour for o in scene.objects}
        shapes = {o.shape for o in scene.objects}
        for turn in turns:
            if turn.question_type != "existence":
                continue
            answers[turn.answer] += 1
            colour, shape = re.fullmatch(r"Is there an? (\w+) (\w+)\?", turn.question).groups()
            if turn.answer == "no":
                assert colour in colours or shape in shapes, (scene, turn)
    share_yes = answers["yes"] / (answers["yes"] + answers["no"])
    assert 0.4 <= share_yes <= 0.6, answers


def test_colour_question_only_for_unique_shapes() -> None:
    scene = _scene(
        ("red", "circle", "small", (2, 2, 12, 12)),
        ("blue", "circle", "small", (30, 2, 40, 12)),
        ("green", "square", "small", (50, 40, 60, 50)),
    )
    for seed in range(50):
        for turn in conversation(scene, np.random.default_rng(seed), CONFIG.colours, CONFIG.shapes):
            if turn.question_type == "colour":
                assert turn.question == "What colour is the square?" and turn.answer == "green"


def test_single_object_scene_never_asks_position() -> None:
    scene = _scene(RED_CIRCLE)
    for seed in range(50):
        turns = conversation(scene, np.random.default_rng(seed), CONFIG.colours, CONFIG.shapes)
        assert "position" not in {t.question_type for t in turns}


def test_format_box_matches_documented_example() -> None:
    assert format_box((4, 8, 20, 26), 64) == "[[062,125,312,406]]"
    assert format_box((0, 0, 64, 64), 64) == "[[000,000,999,999]]"
    assert normalise_box((4, 8, 20, 26), 64) == (62, 125, 312, 406)


def test_parse_format_round_trip() -> None:
    for index in range(50):
        for obj in sample_scene(CONFIG, "val", index).objects:
            text = format_box(obj.box, 64)
            assert re.fullmatch(r"\[\[\d{3},\d{3},\d{3},\d{3}\]\]", text)
            assert parse_box(text) == normalise_box(obj.box, 64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[062,125,312,406]]", (62, 125, 312, 406)),
        (" the box is [[ 62, 125 ,312,406 ]] ", (62, 125, 312, 406)),
        ("[0,0,999,999]", (0, 0, 999, 999)),
        ("", None),
        ("red", None),
        ("[[062,125,312]]", None),
        ("[[1000,0,0,0]]", None),
        ("[[500,500,100,100]]", None),
        ("[[-1,2,3,4]]", None),
        ("[[a,b,c,d]]", None),
    ],
)
def test_parse_box_is_tolerant(text: str, expected: tuple[int, ...] | None) -> None:
    assert parse_box(text) == expected


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (0, 0, 5, 5)) == pytest.approx(0.25)
    assert box_iou((3, 3, 3, 3), (3, 3, 3, 3)) == 0.0


def test_boxes_of_a_wide_scene_are_normalised_per_axis():
    assert normalise_box((64, 16, 128, 48), 128, 64) == (500, 250, 999, 749)
    assert format_box((0, 0, 32, 64), 128, 64) == "[[000,000,250,999]]"
