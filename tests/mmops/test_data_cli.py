"""`mmops data convert`, a recipe's data.source and `mmops schedule`'s triggers: bad input is refused, naming what is
wrong and what is allowed, before anything is written or any server is asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.data.data_source import DataSource
from mmops.cli import main
from mmops.errors import RecipeError
from mmops.recipe import load_recipe

TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"


def with_source(tmp_path: Path, **data) -> Path:
    spec = yaml.safe_load(TINY_CLIP.read_text())
    spec["data"] = {"name": "imported", **data}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_recipe_reads_a_source_instead_of_generating(tmp_path: Path):
    path = with_source(tmp_path, source={"format": "coco", "url": "s3://bucket/coco", "captions": {"train": "annotations/captions_train.json"}})
    assert load_recipe(path).recipe.data.source == DataSource(format="coco", url="s3://bucket/coco", captions={"train": "annotations/captions_train.json"})


@pytest.mark.parametrize(("data", "said"), [
    ({"shapes": {"train": 10}, "source": {"format": "coco", "url": "/d", "captions": {"train": "c.json"}}}, "data.source imports the dataset; shapes generate one"),
    ({"source": {"format": "webdataset", "url": "/d", "captions": {"train": "../up.tar"}}}, r"data\.source.*contains '\.\.'"),
    ({"source": {"format": "webdataset", "url": "/d", "captions": {"train": "t.tar"}, "shards": 3}}, r"data\.source\.shards"),
])
def test_a_bad_source_in_a_recipe_names_the_file_and_field(tmp_path: Path, data, said):
    path = with_source(tmp_path, **data)
    with pytest.raises(RecipeError, match=rf"(?s){path}.*{said}"):
        load_recipe(path)


def test_convert_writes_shards_a_recipe_can_name_and_refuses_what_is_no_dataset(built_dataset: Path, tmp_path: Path, capsys):
    assert main(["data", "convert", str(built_dataset), "--to", "webdataset", "--out", str(tmp_path / "shards"), "--per-shard", "16"]) == 0
    source = DataSource.model_validate(json.loads(capsys.readouterr().out)["source"])
    assert source.files("captions", "train") == ["captions_train-000000.tar", "captions_train-000001.tar", "captions_train-000002.tar"]
    assert all((tmp_path / "shards" / name).is_file() for name in source.files("instruct", "train"))

    assert main(["data", "convert", str(built_dataset), "--to", "coco", "--out", str(tmp_path / "shards")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["data", "convert", str(tmp_path / "nowhere"), "--to", "coco", "--out", str(tmp_path / "coco")]) == 2
    assert "not a dataset folder" in capsys.readouterr().err and not (tmp_path / "coco").exists()


@pytest.mark.parametrize(("args", "said"), [
    ([], "say when it runs: --cron '...' (five cron fields), --on-new-data, or both"),
    (["--cron", "0 2 * * *", "--data-only", "--on-new-data"], "--data-only refreshes the dataset on a --cron schedule"),
    (["--data-only"], "say when it runs"),
])
def test_schedule_needs_a_time_or_new_data_and_says_so_before_any_server(tmp_path: Path, args, said):
    result = subprocess.run([sys.executable, "-m", "mmops", "schedule", str(TINY_CLIP), *args, "--workdir", str(tmp_path / "w")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and said in result.stderr and not (tmp_path / "w").exists()
