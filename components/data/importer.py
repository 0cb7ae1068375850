"""Importing a dataset from its source (LLaVA JSON, COCO captions or WebDataset shards) into the layout
every loader of ours reads, the Shapes world's:

    captions_{split}.json, instruct_{split}.json    LLaVA JSON, image paths relative to the folder
    images/...                                      the images, each checked to be one
    meta.json                                       the source and the counts

Each file is read once, in one pass, through `open_file` (a path relative to the source's url ->
a readable binary stream): a local file, or an S3 object's body as it arrives, so a shard is never
downloaded whole before it is read. Every sample is checked as a LLaVA sample and every path
stays inside its root before anything is written under `out_dir`'s parent.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from components.data.coco_captions import caption_samples_from_coco
from components.data.data_source import SPLITS, DataSource
from components.data.errors import DataError
from components.data.llava_json import check_llava_samples
from components.data.paths import check_relative
from components.data.shards import read_shard
from components.data.shapes_dataset import write_json

Opener = Callable[[str], AbstractContextManager[BinaryIO]]
Progress = Callable[[int, int], None]
IMAGES = "images"
KINDS = ("captions", "instruct")


def import_dataset(source: DataSource, open_file: Opener, out_dir: Path, progress: Progress | None = None) -> dict:
    """Write the source's samples and images under `out_dir` (the layout above); the meta it wrote."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(kind, split, name) for kind in KINDS for split in SPLITS for name in source.files(kind, split)]
    writer = _ImageWriter(out_dir)
    counts: dict[str, int] = {}
    by_file: dict[tuple[str, str], list[dict]] = {}
    for done, (kind, split, name) in enumerate(jobs, start=1):
        where = f"{source.url.rstrip('/')}/{name}"
        if source.format == "webdataset":
            samples = _from_shard(open_file, name, where, split, writer)
        else:
            samples = _from_json(source, open_file, name, where, writer)
        by_file.setdefault((kind, split), []).extend(samples)
        if progress is not None:
            progress(done, len(jobs))
    for (kind, split), samples in by_file.items():
        write_json(out_dir / f"{kind}_{split}.json", samples)
        counts[f"{kind}_{split}"] = len(samples)
    meta = {"source": source.model_dump(mode="json"), "counts": counts, "images": writer.count}
    write_json(out_dir / "meta.json", meta)
    return meta


def _from_json(source: DataSource, open_file: Opener, name: str, where: str, writer: _ImageWriter) -> list[dict]:
    with open_file(name) as stream:
        try:
            data = json.loads(stream.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{where}: not valid JSON ({exc})") from exc
    samples = caption_samples_from_coco(data, where) if source.format == "coco" else check_llava_samples(data, where)
    for index, sample in enumerate(samples):
        if sample.get("image") is None:
            continue
        relative = check_relative(sample["image"], f"{where} sample {index}", "image path", f"{source.url}/{source.images}")
        stored = f"{source.images.rstrip('/')}/{relative}" if source.images else relative
        kept = stored if stored.startswith(f"{IMAGES}/") else f"{IMAGES}/{stored}"  # the source's layout, under images/
        if not writer.has(kept):
            with open_file(stored) as image:
                writer.write(kept, image.read(), f"{where} sample {index}")
        sample["image"] = kept
    return samples


def _from_shard(open_file: Opener, name: str, where: str, split: str, writer: _ImageWriter) -> list[dict]:
    samples = []
    with open_file(name) as stream:
        for item in read_shard(stream, where):
            record = dict(item.record)
            check_llava_samples([record], f"{where} ({item.key}.json)")
            if item.image is not None:
                record["image"] = f"{IMAGES}/{split}/{item.key}{item.image_extension}"
                writer.write(record["image"], item.image, f"{where} sample {item.key!r}")
            samples.append(record)
    return samples


class _ImageWriter:
    """Writes each image once at its path under out_dir, checked to decode; the same path twice must hold the same bytes."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir
        self.sizes: dict[str, int] = {}

    @property
    def count(self) -> int:
        return len(self.sizes)

    def has(self, stored: str) -> bool:
        return stored in self.sizes

    def write(self, stored: str, data: bytes, where: str) -> None:
        target = self.root / stored
        if stored in self.sizes:
            if target.read_bytes() != data:
                raise DataError(f"{where}: image {stored!r} was given twice with different contents")
            return
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise DataError(f"{where}: image {stored!r} is not a readable image ({exc})") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.sizes[stored] = len(data)
