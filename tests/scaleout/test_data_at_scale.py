"""Data at scale on the shared stack: a Shapes world converted to WebDataset shards lies in S3 (moto on loopback);
a recipe whose data.source names the prefix streams the shards in, versions them with DVC and trains on them;
a refresh that finds the shards changed makes a new dataset version, and that version's event starts the recipe
scheduled --on-new-data on the Prefect server; an unchanged refresh starts nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from components.data.convert import to_shards
from components.data.shapes_dataset import generate_shapes_dataset
from components.data.shapes_world import ShapesConfig
from registry.lineage import LineageStore, ancestry
from tests.scaleout.conftest import BUCKET
from tests.scaleout.test_shared_stack import prefect_api

pytestmark = pytest.mark.slow
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"
PREFIX = "sources/tiny-shards"
TRIGGERED_RUN_TIMEOUT_S = 120


def upload_shards(stack, tmp_path: Path, seed: int) -> None:
    world = tmp_path / f"world-{seed}"
    generate_shapes_dataset(ShapesConfig(seed=seed, image_size=32, train=48, val=8, test=12, max_shapes=2), world)
    to_shards(world, tmp_path / f"shards-{seed}", per_shard=30)
    client = stack.s3_client()
    for shard in sorted((tmp_path / f"shards-{seed}").glob("*.tar")):
        client.upload_file(str(shard), BUCKET, f"{PREFIX}/{shard.name}")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    spec = yaml.safe_load(TINY_CLIP.read_text())
    spec["name"] = "tiny-clip-shards"
    spec["data"] = {"name": "tiny-shards", "tokenizer": {"vocab_size": 320}, "source": {
        "format": "webdataset", "url": f"s3://{BUCKET}/{PREFIX}",
        "captions": {"train": "captions_train-{000000..000001}.tar", "test": "captions_test-000000.tar"},
        "instruct": {"train": "instruct_train-{000000..000001}.tar"},
    }}
    path = tmp_path_factory.mktemp("recipe") / "tiny_clip_shards.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def triggered_runs(stack, deployment_id: str) -> list[dict]:
    return prefect_api(stack, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})


def test_shards_in_s3_train_a_recipe_and_a_new_version_of_them_starts_the_recipe_scheduled_on_new_data(stack, recipe, tmp_path):
    upload_shards(stack, tmp_path, seed=1)
    workdir = tmp_path / "work"
    printed = stack.mmops("schedule", str(recipe), "--on-new-data", "--pool", "mmops-data-test", "--workdir", str(workdir)).stdout
    assert "on new versions of dataset tiny-shards" in printed
    deployment_id = printed.strip().splitlines()[-2].rsplit(" ", 1)[-1]
    try:
        listed = stack.mmops("schedules", "--workdir", str(workdir)).stdout
        assert "mmops-pipeline/tiny-clip-shards  on new tiny-shards data  pool mmops-data-test" in listed

        run = stack.mmops("run", str(recipe), "--workdir", str(workdir))
        assert "importing dataset tiny-shards from s3://mmops-team/sources/tiny-shards (webdataset)" in run.stdout + run.stderr
        imported = workdir / "datasets" / "data" / "tiny-shards"
        assert len(json.loads((imported / "captions_train.json").read_text())) == 48
        assert len(list((imported / "images" / "train").glob("*.png"))) == 48
        client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
        version = client.get_model_version_by_alias("tiny-clip-shards", "production")
        store = LineageStore(stack.lineage_url)
        try:
            with store.session() as session:
                trained_on = {d.md5 for d in ancestry(session, "tiny-clip-shards", str(version.version)).training_datasets()}
        finally:
            store.dispose()
        first_md5 = version.tags["mmops.dataset.md5"]
        assert trained_on == {first_md5}

        unchanged = json.loads(stack.mmops("data", "version", str(recipe), "--workdir", str(workdir)).stdout.strip().splitlines()[-1])
        assert unchanged["changed"] is False and unchanged["md5"] == first_md5

        upload_shards(stack, tmp_path, seed=2)  # the same names, new contents
        refreshed = json.loads(stack.mmops("data", "version", str(recipe), "--workdir", str(workdir)).stdout.strip().splitlines()[-1])
        assert refreshed["changed"] is True and refreshed["previous_md5"] == first_md5 and refreshed["md5"] != first_md5

        deadline = time.monotonic() + TRIGGERED_RUN_TIMEOUT_S
        while not (runs := triggered_runs(stack, deployment_id)):
            assert time.monotonic() < deadline, f"no run of the deployment {TRIGGERED_RUN_TIMEOUT_S} s after the new dataset version"
            time.sleep(2)
        assert len(runs) == 1, "one run for the one new version (the unchanged refresh and the pipeline's own versioning start none)"
        assert runs[0]["parameters"] == {"recipe_path": str(recipe.resolve()), "workdir": str(workdir.resolve())}
    finally:
        prefect_api(stack, f"/deployments/{deployment_id}", method="DELETE")


def test_a_source_that_is_not_there_fails_before_any_training(stack, recipe, tmp_path):
    spec = yaml.safe_load(recipe.read_text())
    spec["data"]["source"]["url"] = f"s3://{BUCKET}/sources/nothing-here"
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump(spec))
    result = stack.mmops("run", str(missing), "--workdir", str(tmp_path / "work"), status=2)
    assert "no object 'sources/nothing-here/captions_train-000000.tar' in bucket 'mmops-team'" in result.stderr
    assert "the artifact store" not in result.stderr  # the source is missing, not the store failing
    assert not (tmp_path / "work" / "datasets" / "data" / "tiny-shards").exists()
    assert not list((tmp_path / "work" / "runs").glob("*/stages/*")), "no stage started"
