"""Writing the Shapes-world videos (text-to-video data) beside a dataset's scenes, and reading them back.

Layout under the dataset directory:

    videos/{split}/video_{split}_{index:06d}.png  the frames tiled left to right into one strip,
                                                  frames * width pixels wide: lossless, viewable, no pickle
    videos_{split}.json  one sample per video: its id, the strip's path (`video`), frames, width, height,
                         the short `caption`, the `descriptive_caption`, the `labels` a classifier judges
                         a generated video by, and the video itself (`video_description`, see shapes_videos)

Like the scenes, the output is the same for the same config and seed. No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.errors import DataError
from components.data.paths import InsideResolver
from components.data.shapes_videos import (
    Video,
    VideosConfig,
    descriptive_caption,
    render_video,
    sample_video,
    video_caption,
    video_labels,
)
from components.data.shapes_world import SPLITS

VIDEO_FIELDS: tuple[str, ...] = (
    "id", "video", "frames", "width", "height", "caption", "descriptive_caption", "labels", "video_description",
)
PROGRESS_EVERY = 100  # videos between two progress callbacks


def videos_file(dataset_dir: Path, split: str) -> Path:
    return Path(dataset_dir) / f"videos_{split}.json"


def video_id(split: str, index: int) -> str:
    return f"video_{split}_{index:06d}"


def video_relpath(split: str, index: int) -> str:
    """The strip's path as written in the JSON: relative to the dataset directory, '/'-separated."""
    return f"videos/{split}/{video_id(split, index)}.png"


def frames_strip(frames: list[Image.Image]) -> Image.Image:
    """The frames side by side, first on the left, in one image as wide as all of them."""
    width, height = frames[0].size
    strip = Image.new("RGB", (width * len(frames), height))
    for t, frame in enumerate(frames):
        strip.paste(frame, (t * width, 0))
    return strip


def video_sample(video: Video, split: str, index: int) -> dict:
    return {
        "id": video_id(split, index),
        "video": video_relpath(split, index),
        "frames": video.frames,
        "width": video.width,
        "height": video.height,
        "caption": video_caption(video),
        "descriptive_caption": descriptive_caption(video),
        "labels": video_labels(video),
        "video_description": video.to_dict(),
    }


def write_videos(
    config: VideosConfig,
    seed: int,
    out_dir: Path,
    write_json: Callable[[Path, object], None],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Render every split's videos as strips and write their JSON files; returns the videos per split.
    `seed` is the scenes' (ShapesConfig.seed); `progress(done, total)` is called every PROGRESS_EVERY
    videos and at the end."""
    out_dir = Path(out_dir)
    total = sum(config.split_size(split) for split in SPLITS)
    done, counts = 0, {}
    for split in SPLITS:
        (out_dir / "videos" / split).mkdir(parents=True, exist_ok=True)
        samples = []
        for index in range(config.split_size(split)):
            video = sample_video(config, seed, split, index)
            frames_strip(render_video(video)).save(out_dir / video_relpath(split, index), format="PNG")
            samples.append(video_sample(video, split, index))
            done += 1
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
                progress(done, total)
        write_json(videos_file(out_dir, split), samples)
        counts[split] = len(samples)
    return counts


def read_videos(dataset_dir: Path, split: str) -> list[dict]:
    """The samples of videos_{split}.json, each checked to have every field of VIDEO_FIELDS and
    positive whole frames, width and height."""
    path = videos_file(dataset_dir, split)
    if not path.is_file():
        raise DataError(f"{path}: no such file; write the {split} videos with write_videos")
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error}); expected a list of video samples") from error
    if not isinstance(samples, list):
        raise DataError(f"{path}: holds a {type(samples).__name__}; expected a list of video samples")
    for number, sample in enumerate(samples):
        where = f"{path} sample {number}"
        if not isinstance(sample, dict):
            raise DataError(f"{where}: is a {type(sample).__name__}; expected an object with {list(VIDEO_FIELDS)}")
        missing = [field for field in VIDEO_FIELDS if field not in sample]
        if missing:
            raise DataError(
                f"{where} ({sample.get('id', 'no id')}): missing field(s) {missing}; "
                f"every video sample needs {list(VIDEO_FIELDS)}"
            )
        for field in ("frames", "width", "height"):
            value = sample[field]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DataError(
                    f"{where} ({sample['id']}): field {field!r} is {value!r}; expected a whole number of at least 1"
                )
    return samples


def load_video_frames(
    dataset_dir: Path | InsideResolver,
    relpath: str,
    frames: int,
    *,
    width: int | None = None,
    height: int | None = None,
    source: str = "",
) -> np.ndarray:
    """The frames of the strip at `relpath` (resolved inside the dataset directory, see paths) as a
    uint8 array (frames, height, width, 3). The strip must be `frames` frames of `width` x `height`
    (when given) wide; for many videos pass one InsideResolver of the dataset directory."""
    resolve = dataset_dir if isinstance(dataset_dir, InsideResolver) else InsideResolver(dataset_dir)
    path = resolve(relpath, source, what="video path")
    where = f"{source}: " if source else ""
    if frames < 1:
        raise DataError(f"{where}video {relpath!r} has frames={frames}; expected at least 1")
    if not path.is_file():
        raise DataError(f"{where}video strip {path} does not exist")
    with Image.open(path) as image:
        strip = np.asarray(image.convert("RGB"))  # (height, frames * width, 3)
    strip_height, strip_width = strip.shape[:2]
    expected = f"{frames} x {width}" if width is not None else f"a multiple of {frames}"
    if strip_width != frames * (width if width is not None else strip_width // frames):
        raise DataError(f"{where}video strip {path} is {strip_width} pixels wide; expected {expected} (frames x width)")
    if height is not None and strip_height != height:
        raise DataError(f"{where}video strip {path} is {strip_height} pixels high; expected {height}")
    frame_width = strip_width // frames
    frames_first = strip.reshape(strip_height, frames, frame_width, 3).transpose(1, 0, 2, 3)  # (frames, height, width, 3)
    return np.ascontiguousarray(frames_first)
