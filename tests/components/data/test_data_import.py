"""Sources of data that is not generated: a Shapes world converted to WebDataset shards or COCO captions and imported
back is the same dataset; bad sources are refused with the file, the sample and the field named."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.data.coco_captions import CAPTION_PROMPT, caption_samples_from_coco
from components.data.convert import to_coco, to_shards
from components.data.data_source import DataSource, expand_range
from components.data.errors import DataError
from components.data.importer import import_dataset
from components.data.llava_json import load_llava_json


def local(root: Path):
    @contextmanager
    def open_file(relative: str):
        with (root / relative).open("rb") as stream:
            yield stream

    return open_file


def test_shards_of_a_shapes_world_import_back_as_the_same_samples_and_images(shapes_dir: Path, tmp_path: Path):
    source = DataSource.model_validate(to_shards(shapes_dir, tmp_path / "shards", per_shard=25))
    assert source.captions["train"] == "captions_train-{000000..000002}.tar"  # 60 samples, 25 a shard
    seen = []
    meta = import_dataset(source, local(tmp_path / "shards"), tmp_path / "imported", lambda done, total: seen.append((done, total)))

    for kind in ("captions", "instruct"):
        for split in ("train", "val", "test"):
            assert load_llava_json(tmp_path / "imported" / f"{kind}_{split}.json") == load_llava_json(shapes_dir / f"{kind}_{split}.json")
    image = "images/train/train_000042.png"
    assert (tmp_path / "imported" / image).read_bytes() == (shapes_dir / image).read_bytes()
    assert meta["counts"]["captions_train"] == 60 and meta["images"] == 76 and seen[-1] == (len(seen), len(seen))


def test_coco_captions_of_a_shapes_world_import_back_as_its_captions(shapes_dir: Path, tmp_path: Path):
    source = DataSource.model_validate(to_coco(shapes_dir, tmp_path / "coco"))
    import_dataset(source, local(tmp_path / "coco"), tmp_path / "imported")
    original = load_llava_json(shapes_dir / "captions_test.json")
    imported = load_llava_json(tmp_path / "imported" / "captions_test.json")
    assert [s["conversations"][1]["value"] for s in imported] == [s["conversations"][1]["value"] for s in original]
    assert [s["image"] for s in imported] == [s["image"] for s in original]
    assert imported[0]["conversations"][0]["value"] == CAPTION_PROMPT
    assert not (tmp_path / "imported" / "instruct_train.json").exists()  # COCO holds captions only


def test_a_coco_image_may_have_several_captions_each_a_sample():
    coco = {"images": [{"id": 3, "file_name": "a.png"}],
            "annotations": [{"id": 1, "image_id": 3, "caption": "one"}, {"id": 2, "image_id": 3, "caption": " two "}]}
    samples = caption_samples_from_coco(coco, "c.json")
    assert [(s["id"], s["image"], s["conversations"][1]["value"]) for s in samples] == [("3_1", "a.png", "one"), ("3_2", "a.png", "two")]


@pytest.mark.parametrize(("coco", "said"), [
    ([], "expected a COCO captions object"),
    ({"images": [{"id": 1, "file_name": "../x.png"}], "annotations": []}, r"images\[0\]: file_name '../x.png' contains '..'"),
    ({"images": [{"id": 1, "file_name": "/etc/x.png"}], "annotations": []}, "is absolute"),
    ({"images": [{"id": "1", "file_name": "x.png"}], "annotations": []}, r"images\[0\]: field 'id'"),
    ({"images": [{"id": 1, "file_name": "x.png"}, {"id": 1, "file_name": "y.png"}], "annotations": []}, "given to two images"),
    ({"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{"id": 1, "image_id": 2, "caption": "c"}]}, r"annotations\[0\]: field 'image_id' is 2"),
    ({"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{"id": 1, "image_id": 1, "caption": ""}]}, r"annotations\[0\]: field 'caption'"),
])
def test_a_bad_coco_file_is_refused_with_the_entry_named(coco, said):
    with pytest.raises(DataError, match=said):
        caption_samples_from_coco(coco, "captions_train.json")


def test_an_image_path_that_leaves_the_source_or_an_image_that_is_none_is_refused_before_it_is_written(tmp_path: Path):
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    sample = {"id": "a", "image": "../../etc/passwd", "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]}
    (source_dir / "train.json").write_text(json.dumps([sample]))
    source = DataSource(format="llava_json", url=str(source_dir), captions={"train": "train.json"})
    with pytest.raises(DataError, match=r"train.json sample 0: image path '../../etc/passwd' contains '..'"):
        import_dataset(source, local(source_dir), tmp_path / "out")

    (source_dir / "bad.png").write_bytes(b"not an image at all")
    (source_dir / "train.json").write_text(json.dumps([sample | {"image": "bad.png"}]))
    with pytest.raises(DataError, match=r"image 'images/bad.png' is not a readable image"):
        import_dataset(source, local(source_dir), tmp_path / "out")
    assert not (tmp_path / "out" / "images" / "bad.png").exists()


def test_shard_ranges_expand_with_their_widths():
    assert expand_range("train-{08..11}.tar") == ["train-08.tar", "train-09.tar", "train-10.tar", "train-11.tar"]
    assert expand_range("one.tar") == ["one.tar"]
    for bad, said in [("a-{3..1}.tar", "ends before it starts"), ("a-{1..2}-{1..2}.tar", "one per name"), ("a-{x}.tar", "is written")]:
        with pytest.raises(ValueError, match=said):
            expand_range(bad)


@pytest.mark.parametrize(("fields", "said"), [
    ({"format": "coco", "url": "/d", "captions": {"train": "c.json"}, "instruct": {"train": "i.json"}}, "COCO captions source holds captions only"),
    ({"format": "webdataset", "url": "/d", "captions": {"test": "t.tar"}}, "must name the train split"),
    ({"format": "webdataset", "url": "/d", "captions": {"dev": "t.tar"}}, "split 'dev' is not one of"),
    ({"format": "webdataset", "url": "/d", "captions": {"train": "../t.tar"}}, "contains '..'"),
    ({"format": "webdataset", "url": "http://host/d", "captions": {"train": "t.tar"}}, "scheme 'http' is not read"),
    ({"format": "webdataset", "url": "s3://", "captions": {"train": "t.tar"}}, "names no bucket"),
    ({"format": "parquet", "url": "/d", "captions": {"train": "t.tar"}}, "llava_json"),
    ({"format": "coco", "url": "/d", "captions": {"train": "c.json"}, "images": "/abs"}, "is absolute"),
])
def test_a_bad_source_is_refused_naming_the_field(fields, said):
    with pytest.raises(ValidationError, match=said):
        DataSource.model_validate(fields)
