from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from components.data.shapes_world import (
    BACKGROUND_RGB,
    COLOUR_RGB,
    Scene,
    ShapeObject,
    ShapesConfig,
    min_x_separation,
    position_words,
    render_scene,
    sample_scene,
    side_px,
)


def test_config_rejects_unknown_colour_and_lists_allowed() -> None:
    with pytest.raises(ValidationError) as info:
        ShapesConfig(colours=("red", "mauve"))
    message = str(info.value)
    assert "mauve" in message and "purple" in message and "orange" in message


def test_config_rejects_unknown_shape() -> None:
    with pytest.raises(ValidationError, match="hexagon"):
        ShapesConfig(shapes=("circle", "hexagon"))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"min_shapes": 3, "max_shapes": 2}, "min_shapes=3"),
        ({"max_shapes": 3, "colours": ("red", "blue")}, "max_shapes=3"),
        ({"max_shapes": 5}, "max_shapes"),
        ({"image_size": 16}, "image_size"),
        ({"train": 0}, "train"),
        ({"colours": ("red", "red")}, "twice"),
        ({"colour": ("red",)}, "colour"),  # a typo is an error, not a silent default
    ],
)
def test_config_rejects_bad_values(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        ShapesConfig(**kwargs)


def test_split_size() -> None:
    config = ShapesConfig(train=5, val=6, test=7)
    assert [config.split_size(s) for s in ("train", "val", "test")] == [5, 6, 7]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        config.split_size("dev")


def _gap(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """The larger of the x and y gaps between two half-open boxes (negative: overlap)."""
    return max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3])


@pytest.mark.parametrize("image_size", [32, 64, 100])
def test_scene_invariants(image_size: int) -> None:
    config = ShapesConfig(image_size=image_size, min_shapes=1, max_shapes=4, seed=3)
    sizes_seen = set()
    for index in range(150):
        scene = sample_scene(config, "train", index)
        objects = scene.objects
        assert (scene.width, scene.height) == (image_size, image_size)
        assert 1 <= len(objects) <= 4
        assert len({o.colour for o in objects}) == len(objects)
        for obj in objects:
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= image_size and 0 <= y0 < y1 <= image_size
            assert x1 - x0 == y1 - y0 == side_px(obj.size, image_size)
            assert obj.colour in config.colours and obj.shape in config.shapes
            sizes_seen.add(obj.size)
        for a, b in itertools.combinations(objects, 2):
            assert _gap(a.box, b.box) >= 2
            assert abs(a.centre[0] - b.centre[0]) >= min_x_separation(image_size)
        xs = [o.centre[0] for o in objects]
        assert xs == sorted(xs)
    assert sizes_seen == {"small", "large"}


def test_sizes_follow_fractions() -> None:
    assert side_px("small", 64) == 10 and side_px("large", 64) == 18
    assert side_px("small", 100) == 16 and side_px("large", 100) == 28


def test_sampling_is_a_pure_function_of_seed_split_index() -> None:
    config = ShapesConfig(seed=11)
    assert sample_scene(config, "val", 5) == sample_scene(config, "val", 5)
    scenes = {
        (split, seed): [sample_scene(ShapesConfig(seed=seed), split, i) for i in range(20)]
        for split in ("train", "test")
        for seed in (0, 1)
    }
    assert scenes[("train", 0)] != scenes[("train", 1)]
    assert scenes[("train", 0)] != scenes[("test", 0)]


def test_scene_dict_round_trip() -> None:
    scene = sample_scene(ShapesConfig(max_shapes=4), "train", 3)
    assert Scene.from_dict(scene.to_dict()) == scene


def _obj(shape: str, box: tuple[int, int, int, int], colour: str = "red") -> ShapeObject:
    return ShapeObject(colour=colour, shape=shape, size="large", box=box)


@pytest.mark.parametrize(
    ("box", "words"),
    [
        ((0, 0, 10, 10), "top left"),
        ((27, 27, 37, 37), "centre"),
        ((27, 0, 37, 10), "top centre"),
        ((54, 27, 64, 37), "middle right"),
        ((0, 54, 10, 64), "bottom left"),
        ((50, 50, 64, 64), "bottom right"),
    ],
)
def test_position_words(box: tuple[int, int, int, int], words: str) -> None:
    assert position_words(_obj("square", box), 64) == words


def test_render_fills_each_shape_in_its_box() -> None:
    scene = Scene.square(
        64,
        (
            _obj("circle", (2, 2, 20, 20), "red"),
            _obj("square", (24, 2, 42, 20), "blue"),
            _obj("triangle", (2, 40, 20, 58), "green"),
            _obj("diamond", (40, 40, 58, 58), "yellow"),
        ),
    )
    image = render_scene(scene)
    assert image.mode == "RGB" and image.size == (64, 64)
    for obj in scene.objects:
        cx, cy = (int(v) for v in obj.centre)
        assert image.getpixel((cx, cy)) == COLOUR_RGB[obj.colour], obj.shape
    # Corners tell the shapes apart: only the square fills its top-left corner.
    assert image.getpixel((24, 2)) == COLOUR_RGB["blue"]
    assert image.getpixel((2, 2)) == BACKGROUND_RGB  # circle
    assert image.getpixel((2, 40)) == BACKGROUND_RGB  # triangle apex is at the top middle
    assert image.getpixel((2, 57)) == COLOUR_RGB["green"]  # triangle base is at the bottom
    assert image.getpixel((40, 40)) == BACKGROUND_RGB  # diamond
    assert image.getpixel((32, 32)) == BACKGROUND_RGB  # between shapes
    assert image.getpixel((20, 10)) == BACKGROUND_RGB  # x1 is exclusive


def test_scenes_drawn_on_canvases_of_several_aspects_keep_every_invariant() -> None:
    """LLaVA-1.6's data: wide, tall and square scenes; positions and boxes read per axis."""
    canvases = ((64, 64), (64, 128), (128, 64))
    config = ShapesConfig(image_size=64, canvases=canvases, min_shapes=1, max_shapes=3, seed=5)
    seen = set()
    for index in range(120):
        scene = sample_scene(config, "train", index)
        seen.add((scene.height, scene.width))
        assert render_scene(scene).size == (scene.width, scene.height)
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            assert 0 <= x0 < x1 <= scene.width and 0 <= y0 < y1 <= scene.height
            assert x1 - x0 == side_px(obj.size, scene.width, scene.height)
        for a, b in itertools.combinations(scene.objects, 2):
            assert abs(a.centre[0] - b.centre[0]) >= min_x_separation(scene.width)
        assert Scene.from_dict(scene.to_dict()) == scene
    assert seen == set(canvases)
    wide = _obj("square", (100, 50, 118, 60))
    assert position_words(wide, 128, 64) == "bottom right"


def test_square_scenes_are_unchanged_by_the_canvas_option_and_old_scene_dicts_still_read() -> None:
    config = ShapesConfig(image_size=64, seed=2)
    assert sample_scene(config, "val", 3) == sample_scene(config.model_copy(update={"canvases": None}), "val", 3)
    scene = sample_scene(config, "val", 3)
    legacy = {"image_size": 64, "objects": scene.to_dict()["objects"]}
    assert Scene.from_dict(legacy) == scene
    with pytest.raises(ValueError, match="canvases is empty"):
        ShapesConfig(canvases=())
