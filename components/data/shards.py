"""WebDataset tar shards: samples as groups of files that share a key, read as a stream.

A shard is a plain tar file. Each sample is the files whose names share a key (the name up to
its first '.'), in a row:

    train_000000.png    the image (PNG or JPEG), if the sample has one
    train_000000.txt    the caption: the first answer of the sample's conversation
    train_000000.json   the LLaVA-format record without its image path (conversations and any
                        other fields: regions, scene, question types, ...)

so WebDataset's own readers (and any tar tool) read them, and our reader gets back the LLaVA
sample the shard was written from. Shards are read with tarfile's stream mode: one pass, no
seeking, so a shard can come straight from an S3 response body. Nothing is extracted to disk by
the reader, and member names are checked: a flat key and a known extension, never a path.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from components.data.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
EXTENSIONS = (*IMAGE_EXTENSIONS, ".txt", ".json")
KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_MEMBER_BYTES = 64 * 2**20  # a sample's one file; anything larger is not an image or a caption of ours
_MTIME = 0  # shards are byte-identical for the same samples: no clock in them


@dataclass(frozen=True)
class ShardSample:
    key: str
    record: dict
    """The LLaVA-format sample without its `image` field."""
    image: bytes | None
    image_extension: str | None


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}.tar"


def write_shards(samples: Iterable[tuple[dict, bytes | None, str | None]], out_dir: Path, prefix: str, per_shard: int) -> list[Path]:
    """Write (record, image bytes, image extension) triples as shards `<prefix>-000000.tar`, ... of at most
    `per_shard` samples each; the records' `id` is each sample's key. The shards' paths, in order."""
    if per_shard < 1:
        raise ValueError(f"samples per shard must be at least 1; got {per_shard}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    tar: tarfile.TarFile | None = None
    count = 0
    try:
        for record, image, extension in samples:
            if count % per_shard == 0:
                if tar is not None:
                    tar.close()
                paths.append(out_dir / shard_name(prefix, len(paths)))
                tar = tarfile.open(paths[-1], "w", format=tarfile.USTAR_FORMAT)
            key = _check_key(str(record.get("id", "")), f"{prefix} sample {count}")
            body = {k: v for k, v in record.items() if k != "image"}
            if image is not None:
                _add(tar, f"{key}{extension}", image)
            _add(tar, f"{key}.txt", _caption(body).encode("utf-8"))
            _add(tar, f"{key}.json", json.dumps(body, ensure_ascii=True).encode("utf-8"))
            count += 1
    finally:
        if tar is not None:
            tar.close()
    return paths


def read_shard(stream: BinaryIO, source: str) -> Iterator[ShardSample]:
    """The samples of one shard read as a stream (no seeking); DataError names the shard and member."""
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            key: str | None = None
            files: dict[str, bytes] = {}
            for member in tar:
                if not member.isfile():
                    raise DataError(f"{source}: member {member.name!r} is not a regular file; a shard holds only sample files")
                sample_key, extension = _split_name(member.name, source)
                if member.size > MAX_MEMBER_BYTES:
                    raise DataError(f"{source}: member {member.name!r} is {member.size} bytes; at most {MAX_MEMBER_BYTES} are read")
                if sample_key != key:
                    if key is not None:
                        yield _sample(key, files, source)
                    key, files = sample_key, {}
                if extension in files:
                    raise DataError(f"{source}: sample {key!r} has two {extension} files")
                files[extension] = tar.extractfile(member).read()
            if key is not None:
                yield _sample(key, files, source)
    except tarfile.TarError as exc:
        raise DataError(f"{source}: not a readable tar shard ({exc})") from exc


def _sample(key: str, files: dict[str, bytes], source: str) -> ShardSample:
    if ".json" not in files:
        raise DataError(f"{source}: sample {key!r} has no .json record (files: {', '.join(sorted(files))}); "
                        "each sample needs <key>.json with its conversations")
    try:
        record = json.loads(files[".json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{source}: {key}.json is not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise DataError(f"{source}: {key}.json holds a {type(record).__name__}; expected an object (a LLaVA sample)")
    images = [ext for ext in IMAGE_EXTENSIONS if ext in files]
    if len(images) > 1:
        raise DataError(f"{source}: sample {key!r} has {len(images)} images ({', '.join(images)}); at most one")
    extension = images[0] if images else None
    return ShardSample(key, record, files[extension] if extension else None, extension)


def _split_name(name: str, source: str) -> tuple[str, str]:
    key, dot, rest = name.partition(".")
    extension = dot + rest.lower()
    if "/" in name or "\\" in name or not KEY.match(key) or extension not in EXTENSIONS:
        raise DataError(f"{source}: member {name!r} is not <key><extension> with a key of letters, digits, '_' and '-' "
                        f"and an extension of {', '.join(EXTENSIONS)}")
    return key, extension


def _check_key(key: str, where: str) -> str:
    if not KEY.match(key):
        raise DataError(f"{where}: id {key!r} cannot be a shard key (letters, digits, '_' and '-', at most 128)")
    return key


def _caption(record: dict) -> str:
    turns = record.get("conversations") or []
    return str(turns[1]["value"]) if len(turns) > 1 and isinstance(turns[1], dict) else ""


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
    tar.addfile(info, io.BytesIO(data))
