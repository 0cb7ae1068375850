"""WebDataset shards: what is written is read back, as a stream, and a shard that names a path or lacks a record is refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from components.data.errors import DataError
from components.data.shards import read_shard, write_shards


class OneWay(io.RawIOBase):
    """A stream that cannot seek, as an S3 response body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _record(key: str, caption: str) -> dict:
    return {"id": key, "image": f"images/{key}.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": caption}],
            "scene": {"width": 8}}


def test_samples_round_trip_through_shards_read_as_a_stream(tmp_path: Path):
    samples = [(_record(f"s{i}", f"caption {i}"), bytes([i]) * 10, ".png") for i in range(5)] + [(_record("text_only", "words"), None, None)]
    paths = write_shards(samples, tmp_path, "captions_train", per_shard=2)
    assert [p.name for p in paths] == [f"captions_train-00000{i}.tar" for i in range(3)]

    read = [s for p in paths for s in read_shard(OneWay(p.read_bytes()), p.name)]
    assert [s.key for s in read] == ["s0", "s1", "s2", "s3", "s4", "text_only"]
    assert read[3].record == {k: v for k, v in samples[3][0].items() if k != "image"} and read[3].image == bytes([3]) * 10
    assert read[5].image is None and read[5].image_extension is None
    with tarfile.open(paths[0]) as tar:  # what WebDataset's own readers see: image, caption text, record
        assert tar.getnames() == ["s0.png", "s0.txt", "s0.json", "s1.png", "s1.txt", "s1.json"]
        assert tar.extractfile("s1.txt").read() == b"caption 1"
    assert write_shards(samples, tmp_path / "again", "captions_train", 2)[0].read_bytes() == paths[0].read_bytes()  # no clock inside


def _tar(members: dict[str, bytes], kind: bytes = tarfile.REGTYPE) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.type = len(data), kind
            if kind == tarfile.SYMTYPE:
                info.size, info.linkname = 0, "/etc/passwd"
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return out.getvalue()


RECORD = json.dumps({"conversations": []}).encode()


@pytest.mark.parametrize(("members", "kind", "said"), [
    ({"../evil.json": RECORD}, tarfile.REGTYPE, "is not <key><extension>"),
    ({"dir/a.json": RECORD}, tarfile.REGTYPE, "is not <key><extension>"),
    ({"a.exe": b"x"}, tarfile.REGTYPE, "is not <key><extension>"),
    ({"a.json": RECORD}, tarfile.SYMTYPE, "is not a regular file"),
    ({"a.png": b"x", "a.txt": b"y"}, tarfile.REGTYPE, "has no .json record"),
    ({"a.png": b"x", "a.jpg": b"x", "a.json": RECORD}, tarfile.REGTYPE, "at most one"),
    ({"a.json": b"{not json"}, tarfile.REGTYPE, "not valid JSON"),
])
def test_a_shard_that_names_a_path_or_lacks_a_record_is_refused(members, kind, said):
    with pytest.raises(DataError, match="shard-7.tar") as error:
        list(read_shard(io.BytesIO(_tar(members, kind)), "shard-7.tar"))
    assert said in str(error.value)


def test_a_file_that_is_no_tar_is_named():
    with pytest.raises(DataError, match="shard-1.tar: not a readable tar shard"):
        list(read_shard(io.BytesIO(b"no tar here" * 100), "shard-1.tar"))
