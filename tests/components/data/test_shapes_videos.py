"""Shapes-world videos: each motion shows in the pixels the way its caption says, and the strips round-trip."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from components.data.errors import DataError
from components.data.shapes_annotations import caption
from components.data.shapes_dataset import write_json
from components.data.shapes_world import COLOUR_RGB, position_words, render_scene
from components.data.shapes_videos import (
    MOTIONS,
    Video,
    VideosConfig,
    aspect_word,
    descriptive_caption,
    render_video,
    sample_video,
    video_caption,
    video_labels,
)
from components.data.videos_dataset import (
    VIDEO_FIELDS,
    load_video_frames,
    read_videos,
    videos_file,
    write_videos,
)

WRITTEN = VideosConfig(train=6, val=2, test=3, frames=(1, 3, 4))


def videos(config: VideosConfig, count: int = 20, seed: int = 0) -> list[Video]:
    return [sample_video(config, seed, "train", index) for index in range(count)]


def pixels(video: Video) -> np.ndarray:
    return np.stack([np.asarray(frame) for frame in render_video(video)])  # (frames, height, width, 3)


def colour_mask(frames: np.ndarray, colour: str) -> np.ndarray:
    return np.all(frames == COLOUR_RGB[colour], axis=-1)  # (frames, height, width)


def centroids(mask: np.ndarray) -> np.ndarray:
    """The (x, y) centre of mass of each frame's mask."""
    return np.array([np.argwhere(m)[:, ::-1].mean(axis=0) for m in mask])


def test_a_video_is_a_function_of_its_seed_split_and_index() -> None:
    config = VideosConfig()
    assert sample_video(config, 3, "val", 5) == sample_video(config, 3, "val", 5)
    assert np.array_equal(pixels(sample_video(config, 3, "val", 5)), pixels(sample_video(config, 3, "val", 5)))
    assert len({json.dumps(v.to_dict()) for v in videos(config)}) == 20
    assert sample_video(config, 3, "val", 5) != sample_video(config, 4, "val", 5)
    assert sample_video(config, 3, "val", 5) != sample_video(config, 3, "test", 5)
    video = sample_video(config, 3, "val", 5)
    assert Video.from_dict(json.loads(json.dumps(video.to_dict()))) == video


@pytest.mark.parametrize(("motion", "axis", "sign"), [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1)])
def test_a_sliding_subject_moves_its_way_by_a_quarter_of_the_canvas_or_more(motion: str, axis: int, sign: int) -> None:
    for video in videos(VideosConfig(motions=(motion,), frames=(4, 8))):
        subject = video.subject
        mask = colour_mask(pixels(video), subject.colour)
        areas = mask.sum(axis=(1, 2))
        assert (areas == areas[0]).all() and areas[0] > 0  # the whole shape stays on the canvas
        centre = centroids(mask)
        steps = np.diff(centre[:, axis]) * sign
        assert (steps > 0).all()  # an even slide, never back
        assert centre[-1, axis] - centre[0, axis] == pytest.approx(subject.end[axis] - subject.start[axis])
        assert abs(centre[-1, axis] - centre[0, axis]) >= (video.width, video.height)[axis] / 4
        assert np.allclose(centre[:, 1 - axis], centre[0, 1 - axis])
        assert video_caption(video).startswith(f"a {subject.size} {subject.colour} {subject.shape} moves {motion}")
        assert video_labels(video) == {"colour": subject.colour, "size": subject.size, "shape": subject.shape, "motion": motion}


def on_a_larger_canvas(video: Video, border: int) -> Video:
    def moved(box: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(v + border for v in box)

    objects = tuple(replace(o, start=moved(o.start), end=moved(o.end)) for o in video.objects)
    return Video(video.width + 2 * border, video.height + 2 * border, video.frames, objects)


def test_a_turning_subject_changes_its_outline_in_place_and_keeps_its_area() -> None:
    for video in videos(VideosConfig(motions=("turn",), frames=(2, 4, 8), canvases=((48, 48), (48, 64)))):
        subject = video.subject
        assert subject.shape != "circle" and subject.start == subject.end
        mask = colour_mask(pixels(video), subject.colour)
        uncut = pixels(on_a_larger_canvas(video, 16))[:, 16:-16, 16:-16]
        assert np.array_equal(pixels(video), uncut)  # no corner turns off the canvas
        assert all(not np.array_equal(mask[t], mask[0]) for t in range(1, video.frames))  # no later frame repeats the first
        areas = mask.sum(axis=(1, 2))
        assert np.abs(areas / areas[0] - 1).max() < 0.4
        assert np.abs(centroids(mask) - centroids(mask)[0]).max() < 1.5
        assert video_caption(video).startswith(f"a {subject.size} {subject.colour} {subject.shape} turns")


def test_a_recoloured_subject_changes_colour_halfway_to_one_no_other_object_has() -> None:
    for video in videos(VideosConfig(motions=("recolour",), frames=(3, 4, 8))):
        subject, frames = video.subject, pixels(video)
        before, after = colour_mask(frames, subject.colour).sum(axis=(1, 2)), colour_mask(frames, subject.end_colour).sum(axis=(1, 2))
        assert subject.end_colour not in {o.colour for o in video.objects}
        first_half = np.array([2 * t < video.frames for t in range(video.frames)])
        assert (before[first_half] > 0).all() and (before[~first_half] == 0).all()
        assert (after[first_half] == 0).all() and (after[~first_half] == before[0]).all()
        assert video_caption(video).startswith(f"a {subject.size} {subject.shape} changes from {subject.colour} to {subject.end_colour}")


def test_still_videos_and_one_frame_videos_do_not_change() -> None:
    for video in videos(VideosConfig(motions=("still",), frames=(4,), min_shapes=2)):
        frames = pixels(video)
        assert (frames == frames[0]).all()
        assert video_caption(video) == " and ".join(f"a {o.size} {o.colour} {o.shape} stays still" for o in video.objects)
    for video in videos(VideosConfig(frames=(1,), motions=("left", "turn"))):
        assert all(o.motion == "still" and o.start == o.end and o.end_colour == o.colour for o in video.objects)
        assert video_caption(video) == caption(video.scene_at(0))  # the image caption
        assert np.array_equal(pixels(video)[0], np.asarray(render_scene(video.scene_at(0))))


def test_every_object_keeps_its_own_colour_and_is_never_covered() -> None:
    for video in videos(VideosConfig(min_shapes=3, max_shapes=3, frames=(4,), canvases=((32, 32), (16, 48))), count=40):
        frames = pixels(video)
        for t in range(video.frames):
            colours = [o.colour_at(t, video.frames) for o in video.objects]
            assert len(set(colours)) == len(colours)
            for obj in video.objects:
                alone = pixels(Video(video.width, video.height, video.frames, (obj,)))
                colour = obj.colour_at(t, video.frames)
                assert colour_mask(frames[t], colour).sum() == colour_mask(alone[t], colour).sum() > 0


def test_canvases_durations_and_motions_are_drawn_from_the_config() -> None:
    config = VideosConfig(canvases=((16, 48), (24, 24)), frames=(2, 5), motions=("up", "recolour"))
    drawn = videos(config, count=40)
    assert {(v.height, v.width) for v in drawn} == {(16, 48), (24, 24)}
    assert {v.frames for v in drawn} == {2, 5}
    assert {v.subject.motion for v in drawn} == {"up", "recolour"}
    assert all(o.motion == "still" for v in drawn for o in v.objects[1:])  # one moving object per video
    assert all(pixels(v).shape == (v.frames, v.height, v.width, 3) for v in drawn)


def test_the_descriptive_caption_names_the_canvas_duration_and_places() -> None:
    for video in videos(VideosConfig(motions=("right",), frames=(8,), canvases=((32, 48),), max_shapes=1), count=5):
        text, subject = descriptive_caption(video), video.subject
        start = position_words(subject.at(0, 8), video.width, video.height)
        end = position_words(subject.at(7, 8), video.width, video.height)
        assert text.startswith(f"A {subject.size} {subject.colour} {subject.shape} moves right")  # the objects first
        assert text.endswith("A wide video, 48 pixels wide and 32 high and 8 frames long, of one shape on a dark background.")
        assert (f"from the {start} to the {end}" if start != end else f"within the {start}") in text
    assert (aspect_word(32, 48), aspect_word(48, 48)) == ("tall", "square")


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"frames": (0, 4)}, ["frames", "1 to 64"]),
        ({"frames": (4, 4)}, ["frames", "twice"]),
        ({"canvases": ((30, 32),)}, ["canvases", "multiples of 8"]),
        ({"canvases": ((8, 32),)}, ["canvases", "16 to 256"]),
        ({"canvases": ((32, 264),)}, ["canvases", "16 to 256"]),
        ({"canvases": ()}, ["canvases", "empty"]),
        ({"motions": ("left", "spin")}, ["motions", "spin", "recolour"]),
        ({"max_shapes": 4}, ["max_shapes", "3"]),
        ({"min_shapes": 3, "max_shapes": 2}, ["min_shapes=3"]),
        ({"colours": ("red", "blue")}, ["colours", "at least 3"]),
        ({"speed": 2}, ["speed"]),
    ],
)
def test_bad_config_values_are_refused_by_name(kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        VideosConfig(**kwargs)
    assert all(fragment in str(info.value) for fragment in fragments)


def test_two_colours_suffice_for_two_shapes_that_never_recolour() -> None:
    drawn = videos(VideosConfig(colours=("red", "blue"), motions=("left", "turn"), min_shapes=2, frames=(4,)))
    assert all({o.colour for o in v.objects} == {"red", "blue"} for v in drawn)
    assert set(MOTIONS) == set(VideosConfig().motions)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list]:
    out = tmp_path_factory.mktemp("videos")
    calls: list[tuple[int, int]] = []
    counts = write_videos(WRITTEN, 5, out, write_json, progress=lambda done, total: calls.append((done, total)))
    return out, counts, calls


def test_the_writer_writes_one_strip_per_video_and_a_manifest_per_split(written: tuple[Path, dict, list]) -> None:
    out, counts, calls = written
    assert counts == {"train": 6, "val": 2, "test": 3} and calls[-1] == (11, 11)
    for split, count in counts.items():
        samples = read_videos(out, split)
        assert [s["id"] for s in samples] == [f"video_{split}_{i:06d}" for i in range(count)]
        for index, sample in enumerate(samples):
            video = sample_video(WRITTEN, 5, split, index)
            assert sample["video_description"] == video.to_dict() and sample["caption"] == video_caption(video)
            assert set(sample) == set(VIDEO_FIELDS)
            strip = np.asarray(Image.open(out / sample["video"]))
            assert strip.shape == (video.height, video.frames * video.width, 3)
            frames = load_video_frames(out, sample["video"], sample["frames"], width=sample["width"], height=sample["height"])
            assert frames.dtype == np.uint8 and np.array_equal(frames, pixels(video))


def test_unsafe_or_mismatched_video_paths_are_refused(written: tuple[Path, dict, list]) -> None:
    out, _, _ = written
    sample = read_videos(out, "train")[0]
    for bad in ("../outside.png", "videos/../../outside.png", str((out / sample["video"]).resolve()), "/etc/passwd"):
        with pytest.raises(DataError, match="absolute|'..'"):
            load_video_frames(out, bad, 1)
    with pytest.raises(DataError, match=sample["id"] + r"\.png.*pixels wide"):
        load_video_frames(out, sample["video"], sample["frames"], width=sample["width"] + 8)
    with pytest.raises(DataError, match="does not exist"):
        load_video_frames(out, "videos/train/video_train_999999.png", 1)


def test_a_manifest_missing_a_field_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    path = videos_file(tmp_path, "val")
    path.write_text(json.dumps([{field: 1 for field in VIDEO_FIELDS if field != "caption"}]))
    with pytest.raises(DataError, match=r"videos_val\.json sample 0.*'caption'"):
        read_videos(tmp_path, "val")
    path.write_text(json.dumps([{**{field: "x" for field in VIDEO_FIELDS}, "frames": 0}]))
    with pytest.raises(DataError, match=r"videos_val\.json sample 0.*'frames'"):
        read_videos(tmp_path, "val")
    with pytest.raises(DataError, match="videos_test.json: no such file"):
        read_videos(tmp_path, "test")
