"""Where a dataset comes from when it is not generated: a folder or an S3 prefix holding LLaVA JSON,
COCO captions or WebDataset shards.

    data:
      name: shapes-shards
      source:
        format: webdataset
        url: s3://datasets/shapes            # or a local folder
        captions: {train: "captions_train-{000000..000003}.tar", test: captions_test-000000.tar}
        instruct: {train: "instruct_train-{000000..000003}.tar"}

Every path is relative to `url` (and an image path to `url`/`images`); none may leave it. What
reads the files is given to the importer (components.data.importer): this module knows no store.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from components.data.paths import check_relative

SourceFormat = Literal["llava_json", "coco", "webdataset"]
SPLITS = ("train", "val", "test")
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
MAX_SHARDS = 100_000


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: SourceFormat
    url: str
    """A local folder, or s3://BUCKET[/PREFIX] (read through boto3 with the settings' endpoint and region)."""
    captions: dict[str, str | list[str]] = {}
    """Per split, the file(s) of caption samples: LLaVA JSON files, COCO captions files or shards; a shard name
    may hold one range in braces, `train-{000000..000099}.tar`."""
    instruct: dict[str, str | list[str]] = {}
    """Per split, the file(s) of conversations (LLaVA JSON or shards; COCO holds captions only)."""
    images: str = ""
    """The folder under `url` that LLaVA JSON image paths and COCO file_names are relative to ('' = url itself)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("", "s3", "file"):
            raise ValueError(f"url {value!r}: a local folder or s3://BUCKET[/PREFIX]; scheme {parsed.scheme!r} is not read")
        if parsed.scheme == "s3" and not parsed.netloc:
            raise ValueError(f"url {value!r} names no bucket (s3://BUCKET[/PREFIX])")
        if not value.strip():
            raise ValueError("url is empty: a local folder or s3://BUCKET[/PREFIX]")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: str) -> str:
        return value and check_relative(value, "data.source", "images folder", "url")

    @model_validator(mode="after")
    def _files(self) -> DataSource:
        for kind in ("captions", "instruct"):
            for split, files in getattr(self, kind).items():
                if split not in SPLITS:
                    raise ValueError(f"{kind}: split {split!r} is not one of {', '.join(SPLITS)}")
                for name in self.files(kind, split):
                    check_relative(name, f"data.source.{kind}.{split}", "file", "url")
        if "train" not in self.captions and "train" not in self.instruct:
            raise ValueError("captions or instruct must name the train split's files")
        if self.format == "coco" and self.instruct:
            raise ValueError("a COCO captions source holds captions only: leave instruct out")
        return self

    @property
    def is_s3(self) -> bool:
        return urlparse(self.url).scheme == "s3"

    def files(self, kind: Literal["captions", "instruct"], split: str) -> list[str]:
        """The split's files of that kind, shard ranges expanded, in order."""
        given = getattr(self, kind).get(split, [])
        names = [given] if isinstance(given, str) else list(given)
        return [expanded for name in names for expanded in expand_range(name)]


def expand_range(name: str) -> list[str]:
    """`train-{000000..000002}.tar` -> train-000000.tar, train-000001.tar, train-000002.tar (widths kept); a name
    without braces is itself. One range per name."""
    ranges = _RANGE.findall(name)
    if not ranges:
        if "{" in name or "}" in name:
            raise ValueError(f"{name!r}: a range is written {{FIRST..LAST}} with whole numbers, e.g. train-{{000000..000099}}.tar")
        return [name]
    if len(ranges) > 1:
        raise ValueError(f"{name!r} has {len(ranges)} ranges; one per name (list several names instead)")
    first, last = ranges[0]
    if int(last) < int(first):
        raise ValueError(f"{name!r}: the range ends before it starts")
    if int(last) - int(first) >= MAX_SHARDS:
        raise ValueError(f"{name!r}: at most {MAX_SHARDS} shards in one range")
    width = len(first)
    return [_RANGE.sub(str(i).zfill(width), name) for i in range(int(first), int(last) + 1)]
