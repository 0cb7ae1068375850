"""Converting a dataset folder of ours (the Shapes world's layout, components.data.importer) to the formats
data comes in at scale: WebDataset shards or COCO captions. What comes out, read back by the importer
as a `data.source`, is the same dataset, so the path from shards or COCO to training is tested on data
whose right answers are known.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from components.data.coco_captions import coco_from_samples
from components.data.data_source import SPLITS
from components.data.llava_json import load_llava_json
from components.data.paths import InsideResolver
from components.data.shards import shard_name, write_shards
from components.data.shapes_dataset import write_json

KINDS = ("captions", "instruct")


def to_shards(dataset_dir: Path, out_dir: Path, per_shard: int = 1000) -> dict:
    """Every captions_/instruct_<split>.json of `dataset_dir` as shards `<kind>_<split>-000000.tar`, ... in `out_dir`;
    the `data.source` that reads them back (url: out_dir)."""
    source: dict = {"format": "webdataset", "url": str(out_dir.resolve())}
    for kind, split, samples in _files(dataset_dir):
        paths = write_shards(_with_images(dataset_dir, samples), out_dir, f"{kind}_{split}", per_shard)
        last = len(paths) - 1
        source.setdefault(kind, {})[split] = shard_name(f"{kind}_{split}", 0) if last == 0 else f"{kind}_{split}-{{000000..{last:06d}}}.tar"
    return source


def to_coco(dataset_dir: Path, out_dir: Path) -> dict:
    """Every captions_<split>.json of `dataset_dir` as COCO captions `annotations/captions_<split>.json`, its images
    copied under out_dir/images as they were; the `data.source` that reads them back (url: out_dir)."""
    source: dict = {"format": "coco", "url": str(out_dir.resolve()), "captions": {}}
    inside = InsideResolver(dataset_dir)
    for kind, split, samples in _files(dataset_dir):
        if kind != "captions":
            continue  # COCO holds captions only
        coco = coco_from_samples(samples, f"{dataset_dir.name} {split} captions")
        for image in coco["images"]:
            target = out_dir / image["file_name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(inside(image["file_name"], f"{dataset_dir} {split}", "image path"), target)
        (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "annotations" / f"captions_{split}.json", coco)
        source["captions"][split] = f"annotations/captions_{split}.json"
    return source


def _files(dataset_dir: Path) -> Iterator[tuple[str, str, list[dict]]]:
    for kind in KINDS:
        for split in SPLITS:
            path = dataset_dir / f"{kind}_{split}.json"
            if path.is_file():
                yield kind, split, load_llava_json(path)


def _with_images(dataset_dir: Path, samples: list[dict]) -> Iterator[tuple[dict, bytes | None, str | None]]:
    inside = InsideResolver(dataset_dir)
    for index, sample in enumerate(samples):
        if sample.get("image") is None:
            yield sample, None, None
            continue
        path = inside(sample["image"], f"{dataset_dir} sample {index}", "image path")
        yield sample, path.read_bytes(), path.suffix.lower()


def source_yaml(source: dict) -> str:
    """The `data.source` block a recipe pastes in, as YAML-compatible JSON lines."""
    return json.dumps({"source": source}, indent=2)
