"""The Data page's parts: which dataset version is on disk, its sample files, samples with safe image paths, annotated images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dashboards.dataset_samples import (
    checked_out_md5,
    dataset_folder,
    load_samples,
    object_rows,
    sample_files,
)
from dashboards.errors import DashboardError
from dashboards.sample_image import BOX_COLOUR, annotated_image

MD5 = "7d6886ee2cdf78db2caa4bcf6d202eac.dir"
LOCK = f"""schema: '2.0'
stages:
  tiny-shapes:
    cmd: mmops data generate --params params.yaml --name tiny-shapes --out data/tiny-shapes
    outs:
    - path: data/tiny-shapes
      hash: md5
      md5: {MD5}
"""
GOOD = {
    "id": "test_000000",
    "image": "images/test/test_000000.png",
    "conversations": [{"from": "human", "value": "<image>\nWhat shape is the blue object?"}, {"from": "gpt", "value": "square"}],
    "scene": {"image_size": 8, "objects": [{"colour": "blue", "shape": "square", "size": "small", "box": [2, 2, 6, 6]}]},
}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "tiny-shapes"
    (folder / "images" / "test").mkdir(parents=True)
    Image.new("RGB", (8, 8), (255, 255, 255)).save(folder / "images" / "test" / "test_000000.png")
    (tmp_path / "outside.png").write_bytes(b"not for the dashboard")
    samples = [
        GOOD,
        {**GOOD, "id": "escapes", "image": "../../outside.png"},
        {**GOOD, "id": "text-only", "image": None},
        {**GOOD, "id": "missing", "image": "images/test/nowhere.png"},
        ["not", "an", "object"],
    ]
    (folder / "instruct_test.json").write_text(json.dumps(samples))
    (folder / "captions_train.json").write_text(json.dumps([GOOD]))
    (folder / "notes.json").write_text("[]")
    (folder / "instruct_val.json").symlink_to(folder / "instruct_test.json")
    (tmp_path / "dvc.lock").write_text(LOCK)
    return folder


def test_the_dataset_on_disk_is_named_by_dvc_lock(dataset: Path):
    repo = dataset.parents[1]
    assert checked_out_md5(repo, "tiny-shapes") == MD5
    assert checked_out_md5(repo, "other-dataset") is None
    assert checked_out_md5(repo / "nowhere", "tiny-shapes") is None


def test_a_dataset_folder_stays_inside_data(dataset: Path):
    assert dataset_folder(dataset.parents[1], "tiny-shapes") == dataset.resolve()
    with pytest.raises(DashboardError, match="contains '..'"):
        dataset_folder(dataset.parents[1], "../elsewhere")
    with pytest.raises(DashboardError, match="is absolute"):
        dataset_folder(dataset.parents[1], "/etc")


def test_reading_samples_imports_no_torch():
    """Safe image paths come from components.data.paths, which (unlike llava_json) does not load torch."""
    code = "import sys, dashboards.dataset_samples; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_sample_files_are_the_captions_and_instruct_files_by_split(dataset: Path):
    assert sample_files(dataset) == {("captions", "train"): dataset / "captions_train.json", ("instruct", "test"): dataset / "instruct_test.json"}


def test_samples_show_their_image_and_turns_and_say_why_an_image_is_not_shown(dataset: Path):
    samples, total = load_samples(dataset, dataset / "instruct_test.json", 0, 10)
    assert total == 5 and [s.id for s in samples] == ["test_000000", "escapes", "text-only", "missing", "#4"]
    good, escapes, text_only, missing, not_object = samples
    assert good.image == (dataset / "images" / "test" / "test_000000.png").resolve() and good.problem is None
    assert good.turns == (("human", "What shape is the blue object?"), ("gpt", "square"))
    assert object_rows(good.objects) == [{"colour": "blue", "shape": "square", "size": "small", "box": "2, 2, 6, 6"}]
    assert escapes.image is None and "contains '..'" in escapes.problem and "instruct_test.json sample 1" in escapes.problem
    assert text_only.image is None and text_only.problem == "this sample has no image"
    assert missing.image is None and "is not in" in missing.problem
    assert not_object.image is None and "is a list, not an object" in not_object.problem


def test_samples_start_where_asked(dataset: Path):
    samples, total = load_samples(dataset, dataset / "instruct_test.json", 2, 2)
    assert total == 5 and [s.id for s in samples] == ["text-only", "missing"]


@pytest.mark.parametrize(("text", "problem"), [("{not json", "cannot be read as JSON"), ('{"a": 1}', "the top level is a dict")])
def test_a_file_that_is_not_a_list_of_samples_is_refused_naming_it(tmp_path: Path, text: str, problem: str):
    (tmp_path / "instruct_test.json").write_text(text)
    with pytest.raises(DashboardError, match=problem) as error:
        load_samples(tmp_path, tmp_path / "instruct_test.json", 0, 4)
    assert "instruct_test.json" in str(error.value)


def test_an_annotated_image_is_enlarged_without_blurring_and_outlines_each_box(dataset: Path):
    image = annotated_image(dataset / "images" / "test" / "test_000000.png", GOOD["scene"]["objects"], width=64)
    assert image.size == (64, 64)  # 8 pixels, enlarged 8 times
    assert image.getpixel((2 * 8, 4 * 8)) == BOX_COLOUR, "the box's left edge"
    assert image.getpixel((6 * 8 - 1, 4 * 8)) == BOX_COLOUR, "the box's right edge: x1 is exclusive"
    assert image.getpixel((4 * 8, 4 * 8)) == (255, 255, 255), "inside the box the image is untouched"
    assert image.getpixel((7 * 8, 7 * 8)) == (255, 255, 255)


def test_a_file_that_is_no_image_is_refused(tmp_path: Path):
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(DashboardError, match="broken.png is not an image"):
        annotated_image(tmp_path / "broken.png", [])


def test_a_video_sample_shows_its_strip_of_frames_its_captions_and_its_objects(tmp_path: Path):
    from components.data.recaption import recaption
    from components.data.shapes_dataset import write_json
    from components.data.shapes_videos import VideosConfig
    from components.data.videos_dataset import read_videos, write_videos

    write_videos(VideosConfig(train=2, val=1, test=2, frames=(5,), max_shapes=1), 0, tmp_path, write_json)
    write_json(tmp_path / "videos_train.json", recaption(read_videos(tmp_path, "train"))[0])
    assert ("videos", "test") in sample_files(tmp_path)
    samples, total = load_samples(tmp_path, tmp_path / "videos_test.json", 0, 2)
    sample, raw = samples[0], json.loads((tmp_path / "videos_test.json").read_text())[0]
    assert total == 2 and Image.open(sample.image).size == (5 * raw["width"], raw["height"])  # the five frames side by side
    assert [label for label, _ in sample.turns] == ["caption", "descriptive"]
    assert object_rows(sample.objects)[0]["motion"] in ("still", "left", "right", "up", "down", "turn", "recolour")
    recaptioned, _ = load_samples(tmp_path, tmp_path / "videos_train.json", 0, 1)
    assert [label for label, _ in recaptioned[0].turns] == ["caption", "short caption"]  # the caption is the descriptive one now
