"""The Data page's data: dataset versions from the lineage store, and samples of the version on disk.

A workdir's `datasets/` repository holds one version of each dataset in its
working tree: the one its dvc.lock names. Samples are read from there, and
only when that is the version asked for; any other version is in the DVC
cache and remote, not on disk, and the page says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from components.data.errors import DataError
from components.data.paths import resolve_image, resolve_inside
from dashboards.display import utc_text
from dashboards.errors import DashboardError
from registry.lineage import DatasetVersion, dataset_descendants

SAMPLE_FILE = re.compile(r"^(?P<kind>captions|instruct|videos)_(?P<split>[A-Za-z0-9_-]+)\.json$")
CAPTION_FIELDS = (("caption", "caption"), ("short caption", "short_caption"), ("descriptive", "descriptive_caption"))
"""A video sample's texts, as (label, field): its caption (descriptive after re-captioning), the short one it had then."""
IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class DatasetVersionRow:
    name: str
    md5: str
    git_rev: str
    path: str
    created: str
    model_versions: tuple[str, ...]  # 'name vN' of every model version it fed, however indirectly


@dataclass(frozen=True)
class Sample:
    id: str
    image: Path | None  # resolved inside the dataset folder; None when the sample has no image or it was refused
    problem: str | None  # why the image is not shown, when it is not
    turns: tuple[tuple[str, str], ...]  # (speaker, text), the image marker removed
    objects: tuple[dict[str, Any], ...]  # the scene's objects (colour, shape, size, box), when the file has them


def dataset_versions(session: Session) -> list[DatasetVersionRow]:
    """Every dataset version in the lineage store, newest first, with the model versions it fed."""
    rows = session.scalars(select(DatasetVersion).order_by(DatasetVersion.created_at.desc(), DatasetVersion.id.desc())).all()
    fed: dict[str, tuple[str, ...]] = {}
    for md5 in {row.md5 for row in rows}:
        models = dataset_descendants(session, md5).model_versions
        fed[md5] = tuple(f"{m.name} v{m.version}" for m in sorted(models, key=lambda m: (m.name, int(m.version) if m.version.isdigit() else 0)))
    return [
        DatasetVersionRow(row.name, row.md5, row.git_rev, row.path, utc_text(row.created_at), fed[row.md5])
        for row in rows
    ]


def checked_out_md5(datasets_repo: Path, name: str) -> str | None:
    """The DVC md5 of the dataset version in the repository's working tree (from dvc.lock); None when it holds none."""
    lock_file = datasets_repo / "dvc.lock"
    if not lock_file.is_file():
        return None
    try:
        lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DashboardError(f"{lock_file}: not valid YAML ({error})") from None
    outs = (lock.get("stages") or {}).get(name, {}).get("outs") or []
    return next((out.get("md5") for out in outs if out.get("path") == f"data/{name}"), None)


def dataset_folder(datasets_repo: Path, name: str) -> Path:
    """Where the working tree holds a dataset: datasets/data/NAME, the name kept inside data/."""
    try:
        return resolve_inside(datasets_repo / "data", name, source=f"dataset {name!r}")
    except DataError as error:
        raise DashboardError(str(error)) from None


def sample_files(folder: Path) -> dict[tuple[str, str], Path]:
    """(kind, split) -> sample file, for the captions_{split}.json and instruct_{split}.json (LLaVA JSON) and the
    videos_{split}.json (a video's frames side by side, its captions and description) in a dataset folder."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.iterdir()):
        match = SAMPLE_FILE.match(path.name)
        if match and path.is_file() and not path.is_symlink():
            found[(match["kind"], match["split"])] = path
    return found


def load_samples(folder: Path, file: Path, start: int, count: int) -> tuple[list[Sample], int]:
    """`count` samples of a LLaVA JSON file from index `start`, and how many the file holds."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DashboardError(f"{file}: cannot be read as JSON ({error})") from None
    if not isinstance(data, list):
        raise DashboardError(f"{file}: the top level is a {type(data).__name__}; a LLaVA JSON file is a list of samples")
    start = max(0, start)
    return [_sample(folder, file, start + i, raw) for i, raw in enumerate(data[start:start + count])], len(data)


def object_rows(objects: tuple[dict[str, Any], ...]) -> list[dict[str, str]]:
    """A scene's objects as table rows, every value as text (a box as 'x0, y0, x1, y1')."""
    return [
        {key: ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value) for key, value in item.items()}
        for item in objects
    ]


def _sample(folder: Path, file: Path, index: int, raw: object) -> Sample:
    where = f"{file.name} sample {index}"
    if not isinstance(raw, dict):
        return Sample(f"#{index}", None, f"{where} is a {type(raw).__name__}, not an object", (), ())
    image, problem = None, None
    named = raw.get("image", raw.get("video"))  # a video is shown as its strip of frames
    if named is None:
        problem = "this sample has no image"
    else:
        try:
            image = resolve_image(folder, named, source=where)
        except DataError as error:
            problem = str(error)
        if image is not None and not image.is_file():
            image, problem = None, f"{where}: image {named!r} is not in {folder}"
    turns = tuple(
        (str(turn.get("from", "?")), str(turn.get("value", "")).replace(IMAGE_TOKEN, "").strip())
        for turn in raw.get("conversations") or []
        if isinstance(turn, dict)
    ) or tuple((label, str(raw[key])) for label, key in CAPTION_FIELDS if raw.get(key) and not (key == "descriptive_caption" and raw[key] == raw.get("caption")))
    scene = raw.get("scene", raw.get("video_description"))
    objects = scene.get("objects") if isinstance(scene, dict) else None
    shown_objects = tuple(o for o in objects if isinstance(o, dict)) if isinstance(objects, list) else ()
    return Sample(str(raw.get("id", f"#{index}")), image, problem, turns, shown_objects)
