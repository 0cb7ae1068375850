"""Shapes-world videos for text-to-video diffusion: shapes that move, turn or change colour.

A video is a few frames of one Shapes canvas, at one of the configured durations and native
(height, width) sizes. Its first object, the subject, does one thing over the video:

  still     stays where it is;
  left, right, up, down
            slides that way by at least a quarter of the canvas side along the motion, at an even
            pace from its start box (frame 0) to its end box (the last frame), never leaving the canvas;
  turn      turns clockwise in place, about its centre, a quarter turn per video length: frame t
            shows it turned by 90 * t / frames degrees, so no later frame repeats the first even for
            a square or a diamond (which look the same after a full quarter turn); never a circle;
  recolour  changes from its colour to another palette colour halfway: frames t with 2t < frames
            show the first colour, the rest the second; no blend, so every pixel is a palette colour.

The other objects stay still, so nothing collides: they are placed clear of the subject's whole
path (for a turning shape, of the circle it turns in). Every object has its own colour at every
frame, the recoloured subject's second colour included. A one-frame video is an image: all still.

A video is a pure function of (config, seed, split, index), with its own random stream apart from
the scenes' and the pages'. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.data.shapes_annotations import caption
from components.data.shapes_world import (
    COLOUR_RGB,
    SHAPE_NAMES,
    SPLITS,
    Box,
    Scene,
    ShapeObject,
    check_names,
    check_split,
    corners,
    no_repeats,
    position_words,
    render_scene,
    side_px,
)

MOTIONS: tuple[str, ...] = ("still", "left", "right", "up", "down", "turn", "recolour")
TURNING_SHAPES: tuple[str, ...] = tuple(s for s in SHAPE_NAMES if s != "circle")  # a circle shows no turn
MAX_SHAPES_PER_VIDEO = 3
MAX_FRAMES = 64
CANVAS_SIDES = range(16, 257, 8)  # pixels: a multiple of 8 (latent patches), 16 to 256
QUARTER_TURN_DEGREES = 90.0
_DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
_VIDEO_STREAM = 11  # the scene_rng-style stream of videos, apart from the scenes' and the pages' (7)
_GAP_PX = 2  # the least gap between a still object's box and another's box or path
_PLACEMENT_TRIES = 200  # random boxes tried per still object before placing the subject again
_VIDEO_TRIES = 50  # subject placements tried per video before giving up


class VideosConfig(BaseModel):
    """How many videos each split holds, and what they may look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: int = Field(2000, ge=1)
    val: int = Field(100, ge=1)
    test: int = Field(200, ge=1)
    frames: tuple[int, ...] = (1, 5, 9)
    """Durations a video may have, one picked per video; 1 is an image. 1 + 2k frames are what the video
    autoencoder's causal halving of time takes (1 + k latent frames)."""
    canvases: tuple[tuple[int, int], ...] = ((32, 32), (32, 48), (48, 32))
    """(height, width) sizes a video is drawn at, one picked per video: native aspect ratios."""
    min_shapes: int = Field(1, ge=1, le=MAX_SHAPES_PER_VIDEO)
    max_shapes: int = Field(2, ge=1, le=MAX_SHAPES_PER_VIDEO)
    motions: tuple[str, ...] = MOTIONS
    """What the subject of a video of two or more frames may do, one picked per video."""
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
    """The palette, by default the scenes' own, so captions use the words a Shapes tokenizer knows."""

    @field_validator("frames")
    @classmethod
    def _check_frames(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [f for f in value if not 1 <= f <= MAX_FRAMES]
        if not value or bad:
            raise ValueError(
                f"VideosConfig.frames={list(value)}: list durations from 1 to {MAX_FRAMES} frames (1 is an image)"
            )
        return no_repeats("VideosConfig", "frames", value)

    @field_validator("canvases")
    @classmethod
    def _check_canvases(cls, value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        bad = [c for c in value if not all(side in CANVAS_SIDES for side in c)]
        if not value or bad:
            raise ValueError(
                f"VideosConfig.canvases: {[list(c) for c in bad] or 'empty'}; list (height, width) sizes whose "
                f"sides are multiples of 8 from {CANVAS_SIDES.start} to {CANVAS_SIDES.stop - 1}, e.g. (32, 48)"
            )
        return no_repeats("VideosConfig", "canvases", value)

    @field_validator("motions")
    @classmethod
    def _known_motions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_names("VideosConfig", "motions", value, MOTIONS)

    @field_validator("colours")
    @classmethod
    def _known_colours(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_names("VideosConfig", "colours", value, tuple(COLOUR_RGB))

    @model_validator(mode="after")
    def _check_counts(self) -> VideosConfig:
        if self.min_shapes > self.max_shapes:
            raise ValueError(f"VideosConfig: min_shapes={self.min_shapes} is larger than max_shapes={self.max_shapes}")
        needed = self.max_shapes + ("recolour" in self.motions)
        if len(self.colours) < needed:
            raise ValueError(
                f"VideosConfig.colours: {len(self.colours)} colours {list(self.colours)} for max_shapes={self.max_shapes}; "
                f"list at least {needed}: every object needs its own colour, and a recolouring one a spare to change to"
            )
        return self

    def split_size(self, split: str) -> int:
        """Number of videos in `split` (one of SPLITS)."""
        return {"train": self.train, "val": self.val, "test": self.test}[check_split(split)]


@dataclass(frozen=True)
class MovingObject:
    """One shape of a video: its box and colour at the first frame (`start`, `colour`) and at the last
    (`end`, `end_colour`); they differ only for the motions that change them."""

    colour: str
    shape: str
    size: str
    motion: str
    start: Box
    end: Box
    end_colour: str

    def box_at(self, t: int, frames: int) -> Box:
        """The box at frame t: start and end boxes interpolated at an even pace, in whole pixels."""
        if frames == 1:
            return self.start
        return tuple(a + round((b - a) * t / (frames - 1)) for a, b in zip(self.start, self.end))

    def colour_at(self, t: int, frames: int) -> str:
        return self.end_colour if 2 * t >= frames else self.colour

    def angle_at(self, t: int, frames: int) -> float:
        """Degrees turned clockwise by frame t: a quarter turn per video length, for a turning object."""
        return QUARTER_TURN_DEGREES * t / frames if self.motion == "turn" else 0.0

    def at(self, t: int, frames: int) -> ShapeObject:
        """The object as drawn at frame t, less its turn (see angle_at)."""
        return ShapeObject(self.colour_at(t, frames), self.shape, self.size, self.box_at(t, frames))

    def to_dict(self) -> dict:
        return {
            "colour": self.colour, "shape": self.shape, "size": self.size, "motion": self.motion,
            "start": list(self.start), "end": list(self.end), "end_colour": self.end_colour,
        }

    @classmethod
    def from_dict(cls, data: dict) -> MovingObject:
        start, end = (tuple(int(v) for v in data[key]) for key in ("start", "end"))
        return cls(data["colour"], data["shape"], data["size"], data["motion"], start, end, data["end_colour"])


@dataclass(frozen=True)
class Video:
    """A video of `frames` frames of width x height pixels; objects[0] is the subject, the rest
    (all still) follow left to right."""

    width: int
    height: int
    frames: int
    objects: tuple[MovingObject, ...]

    @property
    def subject(self) -> MovingObject:
        return self.objects[0]

    def scene_at(self, t: int) -> Scene:
        """Frame t as a Scene, objects left to right; a turning object's box is its unturned box."""
        objects = sorted((o.at(t, self.frames) for o in self.objects), key=lambda o: o.centre[0])
        return Scene(self.width, self.height, tuple(objects))

    def to_dict(self) -> dict:
        objects = [o.to_dict() for o in self.objects]
        return {"width": self.width, "height": self.height, "frames": self.frames, "objects": objects}

    @classmethod
    def from_dict(cls, data: dict) -> Video:
        objects = tuple(MovingObject.from_dict(o) for o in data["objects"])
        return cls(int(data["width"]), int(data["height"]), int(data["frames"]), objects)


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(check_split(split)), index, _VIDEO_STREAM])


def sample_video(config: VideosConfig, seed: int, split: str, index: int) -> Video:
    """The video number `index` of `split`: a pure function of (config, seed, split, index)."""
    rng = video_rng(seed, split, index)
    height, width = config.canvases[int(rng.integers(len(config.canvases)))]
    frames = config.frames[int(rng.integers(len(config.frames)))]
    motion = "still" if frames == 1 else config.motions[int(rng.integers(len(config.motions)))]
    count = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    palette = [config.colours[int(i)] for i in rng.choice(len(config.colours), size=len(config.colours), replace=False)]
    colours = palette[:count]
    subject_shapes = TURNING_SHAPES if motion == "turn" else SHAPE_NAMES
    shapes = [subject_shapes[int(rng.integers(len(subject_shapes)))]]
    shapes += [SHAPE_NAMES[int(i)] for i in rng.integers(0, len(SHAPE_NAMES), size=count - 1)]
    sizes = [("small", "large")[int(i)] for i in rng.integers(0, 2, size=count)]
    sides = [side_px(s, width, height) for s in sizes]
    for _ in range(_VIDEO_TRIES):
        start, end, path = _subject_path(motion, sides[0], width, height, rng)
        others = _place_still(sides[1:], path, width, height, rng)
        if others is not None:
            break
    else:  # unreachable for the validated sizes: the subject's path leaves room for two large shapes
        raise RuntimeError(f"could not place {sizes} around a {motion} subject in {width}x{height}px ({split} #{index})")
    end_colour = palette[count] if motion == "recolour" else colours[0]  # a recolour's: no object's colour
    subject = MovingObject(colours[0], shapes[0], sizes[0], motion, start, end, end_colour)
    still = [MovingObject(c, s, z, "still", b, b, c) for c, s, z, b in zip(colours[1:], shapes[1:], sizes[1:], others)]
    still.sort(key=lambda o: o.start[0] + o.start[2])
    return Video(width, height, frames, (subject, *still))


def _subject_path(motion: str, side: int, width: int, height: int, rng: np.random.Generator) -> tuple[Box, Box, Box]:
    """The subject's start and end boxes, and the box its whole path lies in."""
    dx, dy = _DIRECTIONS.get(motion, (0, 0))
    distance = 0
    if dx or dy:
        along = width if dx else height
        distance = int(rng.integers(math.ceil(along / 4), along - side + 1))
    # Room for the circle a turning shape sweeps about its centre: a square's or diamond's corners
    # reach 0.21 of its side beyond its box, a triangle's apex 1/3 of its side below it.
    pad = math.ceil(side / 3) if motion == "turn" else 0
    path_w, path_h = side + 2 * pad + distance * abs(dx), side + 2 * pad + distance * abs(dy)
    px, py = int(rng.integers(0, width - path_w + 1)), int(rng.integers(0, height - path_h + 1))
    x0 = px + pad + (distance if dx < 0 else 0)  # a leftward slide starts at the path's right end
    y0 = py + pad + (distance if dy < 0 else 0)
    start = (x0, y0, x0 + side, y0 + side)
    end = (x0 + dx * distance, y0 + dy * distance, x0 + dx * distance + side, y0 + dy * distance + side)
    return start, end, (px, py, px + path_w, py + path_h)


def _place_still(sides: list[int], path: Box, width: int, height: int, rng: np.random.Generator) -> list[Box] | None:
    """Boxes for the still objects, clear of the subject's path and of each other, or None if one did not fit."""
    taken, boxes = [path], []
    for side in sides:
        for _ in range(_PLACEMENT_TRIES):
            x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            box = (x0, y0, x0 + side, y0 + side)
            if all(_apart(box, other) for other in taken):
                taken.append(box)
                boxes.append(box)
                break
        else:
            return None
    return boxes


def _apart(a: Box, b: Box) -> bool:
    return max(a[0] - b[2], b[0] - a[2]) >= _GAP_PX or max(a[1] - b[3], b[1] - a[3]) >= _GAP_PX


def render_frame(video: Video, t: int) -> Image.Image:
    """Frame t as an RGB image: the Shapes drawing of every object, a turning one turned about its centre."""
    drawn = [(o.at(t, video.frames), o.angle_at(t, video.frames)) for o in video.objects]
    image = render_scene(Scene(video.width, video.height, tuple(obj for obj, angle in drawn if not angle)))
    draw = ImageDraw.Draw(image)
    for obj, angle in drawn:
        if angle:
            draw.polygon(turned_outline(obj, angle), fill=COLOUR_RGB[obj.colour])
    return image


def turned_outline(obj: ShapeObject, degrees: float) -> list[tuple[float, float]]:
    """The corners of a square, triangle or diamond as render_scene draws it in its box, turned
    clockwise by `degrees` about its centre, the mean of its corners, so that it turns in place
    (PIL's pixel-centre coordinates, y down)."""
    if obj.shape not in TURNING_SHAPES:
        raise ValueError(f"a {obj.shape} cannot be drawn turned; turning shapes: {list(TURNING_SHAPES)}")
    points = corners(obj)
    cx, cy = sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    turned = [(cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos) for x, y in points]
    # On a 1/64-pixel grid, so the last bits of sin and cos (which libm may differ in) never decide a pixel.
    return [(round(x * 64) / 64, round(y * 64) / 64) for x, y in turned]


def render_video(video: Video) -> list[Image.Image]:
    """Every frame, first to last, as RGB images of width x height."""
    return [render_frame(video, t) for t in range(video.frames)]


def video_caption(video: Video) -> str:
    """A short caption: each object's size, colour, shape and what it does, the subject first.

    'a large red square moves left', 'a small blue triangle turns', 'a large circle changes from green
    to purple', 'a small yellow diamond stays still'; a one-frame video has its image caption
    ('a large red square at the top left', as a Shapes scene's)."""
    if video.frames == 1:
        return caption(video.scene_at(0))
    return _and([_doing(o) for o in video.objects])


def _doing(obj: MovingObject) -> str:
    if obj.motion == "recolour":  # its colour is the news, so it is not also named before the shape
        return f"a {obj.size} {obj.shape} changes from {obj.colour} to {obj.end_colour}"
    verb = {"still": "stays still", "turn": "turns"}.get(obj.motion, f"moves {obj.motion}")
    return f"a {obj.size} {obj.colour} {obj.shape} {verb}"


def descriptive_caption(video: Video) -> str:
    """A rich caption of the same video, as Sora's descriptive re-captioning writes for training: one sentence
    per object with its places on the 3x3 grid, then the canvas (aspect, pixels, duration). The objects come
    first, so a text tower that reads only the first tokens still reads them."""
    return " ".join([*(_described(o, video) for o in video.objects), canvas_sentence(video.frames, video.width, video.height, len(video.objects))])


def canvas_sentence(frames: int, width: int, height: int, count: int) -> str:
    """'A wide video, 48 pixels wide and 32 high and 9 frames long, of one shape on a dark background.'"""
    kind = "still image" if frames == 1 else "video"
    length = "" if frames == 1 else f" and {frames} frames long"
    shapes = f"{_NUMBER_WORDS[count]} shape{'s' if count > 1 else ''}"
    return f"A {aspect_word(width, height)} {kind}, {width} pixels wide and {height} high{length}, of {shapes} on a dark background."


_NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


def _described(obj: MovingObject, video: Video) -> str:
    start = position_words(obj.at(0, video.frames), video.width, video.height)
    end = position_words(obj.at(video.frames - 1, video.frames), video.width, video.height)
    named = f"A {obj.size} {obj.colour} {obj.shape}"
    if video.frames == 1:
        return f"{named} is at the {start}."
    if obj.motion in _DIRECTIONS:
        where = f"within the {start}" if start == end else f"from the {start} to the {end}"
        return f"{named} moves {obj.motion} {where}."
    if obj.motion == "turn":
        return f"{named} turns clockwise in place at the {start}."
    if obj.motion == "recolour":
        return f"A {obj.size} {obj.shape} at the {start} changes from {obj.colour} to {obj.end_colour} halfway through."
    return f"{named} stays still at the {start}."


def aspect_word(width: int, height: int) -> str:
    """'wide', 'tall' or 'square'."""
    return "wide" if width > height else "tall" if height > width else "square"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def video_labels(video: Video) -> dict[str, str]:
    """What a classifier can judge a generated video by: its subject's colour at the first frame,
    size, shape and motion."""
    subject = video.subject
    return {"colour": subject.colour, "size": subject.size, "shape": subject.shape, "motion": subject.motion}
