"""Reading a dataset's source where it lies: a local folder, or an S3 prefix through boto3.

`opener` gives the importer (components.data.importer) each file as a stream: a local file, or the
body of an S3 GET read as it arrives (no temporary copy). `fingerprint` lists what the source holds
(name, size and ETag or modification time) without reading it, so an unchanged source is not
imported again and a changed one makes a new dataset version. boto3 finds credentials in its own
chain; the endpoint, region and retries are the settings'.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from mmops.errors import PipelineError
from mmops.settings import Settings

Opener = Callable[[str], AbstractContextManager[BinaryIO]]


def is_s3(url: str) -> bool:
    return urlparse(url).scheme == "s3"


def opener(url: str, settings: Settings) -> Opener:
    """Opens a path relative to `url` (already checked to be relative, without '..') for reading."""
    if is_s3(url):
        bucket, prefix = _bucket_prefix(url)
        client = s3_client(settings)

        @contextmanager
        def open_object(relative: str) -> Iterator[BinaryIO]:
            key = f"{prefix}{relative}"
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
            except client.exceptions.NoSuchKey:
                raise PipelineError(f"{url}: no object {key!r} in bucket {bucket!r} (named by data.source)") from None
            try:
                yield body
            finally:
                body.close()

        return open_object

    root = local_root(url)

    @contextmanager
    def open_file(relative: str) -> Iterator[BinaryIO]:
        path = (root / relative).resolve()
        if not path.is_relative_to(root):  # a symlink in the source that leads out of it
            raise PipelineError(f"{url}: {relative!r} resolves to {path}, outside the source; paths must stay inside it")
        if not path.is_file():
            raise PipelineError(f"{url}: no file {relative!r} (named by data.source)")
        with path.open("rb") as stream:
            yield stream

    return open_file


def fingerprint(url: str, settings: Settings) -> list[list]:
    """[name, size, ETag or mtime] of every object or file under `url`, sorted by name."""
    if is_s3(url):
        bucket, prefix = _bucket_prefix(url)
        pages = s3_client(settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted([obj["Key"][len(prefix):], obj["Size"], obj["ETag"].strip('"')] for page in pages for obj in page.get("Contents", []))
    root = local_root(url)
    rows = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            stat = path.stat()
            rows.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    return sorted(rows)


def s3_client(settings: Settings):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"})
    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, config=config)


def _bucket_prefix(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


def local_root(url: str) -> Path:
    root = Path(urlparse(url).path if url.startswith("file:") else url).expanduser().resolve()
    if not root.is_dir():
        raise PipelineError(f"data.source.url {url!r} is not a folder here (a local folder, or s3://BUCKET[/PREFIX])")
    return root
