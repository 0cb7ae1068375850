"""The synthetic Shapes world: sampling scenes of coloured shapes and drawing them.

A scene is a handful of non-overlapping shapes on a dark background. Every object
in a scene has its own colour ("the red shape" names exactly one object) and the
objects' x-centres are well apart ("left of" is never a close call), so every
question asked about a scene has one unambiguous answer.

A scene is a pure function of (seed, split, index): any scene can be regenerated
alone, and a whole dataset is identical across runs and machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 70),
    "blue": (50, 100, 235),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "cyan": (40, 210, 220),
    "pink": (245, 130, 190),
    "white": (240, 240, 240),
}
SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
SIZE_FRACTION: dict[str, float] = {"small": 0.16, "large": 0.28}  # side / image_size
BACKGROUND_RGB = (24, 24, 24)
SPLITS: tuple[str, ...] = ("train", "val", "test")
MAX_SHAPES_PER_SCENE = 4

Split = Literal["train", "val", "test"]
Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive

_BOX_MARGIN_PX = 2  # the least gap between two objects' boxes
_PLACEMENT_TRIES = 200  # random positions tried per object before starting over
_SCENE_TRIES = 50  # fresh placements tried per scene before giving up


class ShapesConfig(BaseModel):
    """Everything that decides the content of a generated Shapes dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    image_size: int = Field(64, ge=32, le=1024)
    train: int = Field(3000, ge=1)
    val: int = Field(200, ge=1)
    test: int = Field(300, ge=1)
    min_shapes: int = Field(1, ge=1, le=MAX_SHAPES_PER_SCENE)
    max_shapes: int = Field(3, ge=1, le=MAX_SHAPES_PER_SCENE)
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
    shapes: tuple[str, ...] = SHAPE_NAMES
    canvases: tuple[tuple[Annotated[int, Field(ge=32, le=2048)], Annotated[int, Field(ge=32, le=2048)]], ...] | None = None
    """(height, width) sizes a scene is drawn at, one picked per scene (LLaVA-1.6's variable
    aspect); unset, every scene is image_size square."""
    caption_noise: float = Field(0.0, ge=0.0, lt=1.0)
    """The fraction of train captions replaced by one of their hard negatives (wrong in one colour,
    shape, size or place), as web alt-texts often miss: the noise BLIP's CapFilt is to remove. Such
    samples are marked `caption_noisy`. Val and test captions stay true."""

    @field_validator("colours")
    @classmethod
    def _known_colours(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_names("ShapesConfig", "colours", value, tuple(COLOUR_RGB))

    @field_validator("shapes")
    @classmethod
    def _known_shapes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_names("ShapesConfig", "shapes", value, SHAPE_NAMES)

    @model_validator(mode="after")
    def _check_counts(self) -> ShapesConfig:
        if self.min_shapes > self.max_shapes:
            raise ValueError(
                f"ShapesConfig: min_shapes={self.min_shapes} is larger than "
                f"max_shapes={self.max_shapes}; min_shapes must be <= max_shapes"
            )
        if self.max_shapes > len(self.colours):
            raise ValueError(
                f"ShapesConfig: max_shapes={self.max_shapes} but only {len(self.colours)} "
                f"colours {list(self.colours)}; every object in a scene needs its own "
                "colour, so list at least max_shapes colours"
            )
        return self

    @field_validator("canvases")
    @classmethod
    def _some_canvases(cls, value: tuple | None) -> tuple | None:
        if value is not None and not value:
            raise ValueError("ShapesConfig.canvases is empty; list (height, width) sizes or leave it out for square images")
        return value

    def split_size(self, split: str) -> int:
        """Number of scenes in `split` (one of SPLITS)."""
        return {"train": self.train, "val": self.val, "test": self.test}[check_split(split)]


def check_names(owner: str, field: str, value: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """`value` if it lists some of `allowed`, each once; else a ValueError naming `owner`.`field` and what is allowed."""
    if not value:
        raise ValueError(f"{owner}.{field} is empty; choose from {list(allowed)}")
    unknown = [name for name in value if name not in allowed]
    if unknown:
        raise ValueError(f"{owner}.{field}: unknown {unknown}; allowed: {list(allowed)}")
    return no_repeats(owner, field, value)


def no_repeats(owner: str, field: str, value: tuple) -> tuple:
    if len(set(value)) != len(value):
        raise ValueError(f"{owner}.{field} lists a value twice: {list(value)}")
    return value


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {list(SPLITS)}")
    return split


@dataclass(frozen=True)
class ShapeObject:
    """One shape in a scene; `box` is its pixel box (x0, y0, x1, y1), x1/y1 exclusive."""

    colour: str
    shape: str
    size: str
    box: Box

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    def to_dict(self) -> dict:
        box = list(self.box)
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "box": box}


@dataclass(frozen=True)
class Scene:
    """The objects of one image of width x height pixels, ordered left to right by x-centre."""

    width: int
    height: int
    objects: tuple[ShapeObject, ...]

    @classmethod
    def square(cls, image_size: int, objects: tuple[ShapeObject, ...]) -> Scene:
        return cls(image_size, image_size, objects)

    def to_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        """Also reads the square-only form {"image_size": S, ...} of earlier datasets."""
        objects = tuple(
            ShapeObject(o["colour"], o["shape"], o["size"], tuple(int(v) for v in o["box"]))
            for o in data["objects"]
        )
        if "image_size" in data:
            return cls.square(int(data["image_size"]), objects)
        return cls(int(data["width"]), int(data["height"]), objects)


def side_px(size: str, width: int, height: int | None = None) -> int:
    """Side length in pixels of a `size` ("small" | "large") shape, a fraction of the shorter side."""
    return max(4, round(SIZE_FRACTION[size] * min(width, height or width)))


def min_x_separation(width: int) -> float:
    """The least distance between two objects' x-centres in one scene."""
    return width / 8


def position_words(obj: ShapeObject, width: int, height: int | None = None) -> str:
    """Where the centre lies on a 3x3 grid: 'top left', 'middle right', 'centre', ..."""
    cx, cy = obj.centre
    row = ("top", "middle", "bottom")[min(int(cy * 3 // (height or width)), 2)]
    col = ("left", "centre", "right")[min(int(cx * 3 // width), 2)]
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def scene_rng(config: ShapesConfig, split: str, index: int, stream: int = 0) -> np.random.Generator:
    """The random stream for one scene; stream 0 places objects, others serve its text."""
    return np.random.default_rng([config.seed, SPLITS.index(check_split(split)), index, stream])


def sample_scene(config: ShapesConfig, split: str, index: int) -> Scene:
    """The scene number `index` of `split`, a pure function of (config, split, index)."""
    rng = scene_rng(config, split, index)
    count = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    picked = rng.choice(len(config.colours), size=count, replace=False)
    colours = [config.colours[int(i)] for i in picked]
    shapes = [config.shapes[int(i)] for i in rng.integers(0, len(config.shapes), size=count)]
    sizes = [("small", "large")[int(i)] for i in rng.integers(0, 2, size=count)]
    height = width = config.image_size
    if config.canvases is not None:  # drawn only then, so square datasets stay what they were
        height, width = config.canvases[int(rng.integers(len(config.canvases)))]
    for _ in range(_SCENE_TRIES):
        boxes = _place_boxes([side_px(s, width, height) for s in sizes], width, height, rng)
        if boxes is not None:
            break
    else:  # unreachable for the validated sizes: four large shapes fit with room to spare
        raise RuntimeError(f"could not place {sizes} in a {width}x{height}px image ({split} #{index})")
    objects = [ShapeObject(c, s, z, b) for c, s, z, b in zip(colours, shapes, sizes, boxes)]
    objects.sort(key=lambda o: o.centre[0])
    return Scene(width, height, tuple(objects))


def _place_boxes(sides: list[int], width: int, height: int, rng: np.random.Generator) -> list[Box] | None:
    """Random boxes that keep the margin and x-separation, or None if one did not fit."""
    boxes: list[Box] = []
    for side in sides:
        for _ in range(_PLACEMENT_TRIES):
            if width == height:  # one draw of two, as square scenes always did
                x0, y0 = (int(v) for v in rng.integers(0, width - side + 1, size=2))
            else:
                x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            box = (x0, y0, x0 + side, y0 + side)
            if all(_compatible(box, other, width) for other in boxes):
                boxes.append(box)
                break
        else:
            return None
    return boxes


def _compatible(a: Box, b: Box, width: int) -> bool:
    gap_x = max(a[0] - b[2], b[0] - a[2])  # negative when the x-ranges overlap
    gap_y = max(a[1] - b[3], b[1] - a[3])
    apart = gap_x >= _BOX_MARGIN_PX or gap_y >= _BOX_MARGIN_PX
    separated = abs((a[0] + a[2]) - (b[0] + b[2])) / 2 >= min_x_separation(width)
    return apart and separated


def render_scene(scene: Scene) -> Image.Image:
    """Draw the scene as an RGB image; every shape fills its box."""
    image = Image.new("RGB", (scene.width, scene.height), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.box
        fill = COLOUR_RGB[obj.colour]
        if obj.shape == "circle":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)  # PIL boxes are inclusive
        elif obj.shape == "square":
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
        elif obj.shape in ("triangle", "diamond"):
            draw.polygon(corners(obj), fill=fill)
        else:
            raise ValueError(f"unknown shape {obj.shape!r}; allowed: {list(SHAPE_NAMES)}")
    return image


def corners(obj: ShapeObject) -> list[tuple[int, int]]:
    """The corners of a square, triangle or diamond as it fills its box, in PIL's inclusive pixel coordinates."""
    x0, y0, x1, y1 = obj.box
    right, bottom = x1 - 1, y1 - 1
    mid_x, mid_y = (x0 + right) // 2, (y0 + bottom) // 2
    outlines = {
        "square": [(x0, y0), (right, y0), (right, bottom), (x0, bottom)],
        "triangle": [(x0, bottom), (right, bottom), (mid_x, y0)],
        "diamond": [(mid_x, y0), (right, mid_y), (mid_x, bottom), (x0, mid_y)],
    }
    if obj.shape not in outlines:
        raise ValueError(f"a {obj.shape} has no corners; shapes with corners: {list(outlines)}")
    return outlines[obj.shape]
