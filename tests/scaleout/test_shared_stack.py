"""A recipe runs unchanged on the shared stack: MLflow and the lineage store on PostgreSQL, artifacts and the
DVC remote on S3 (moto's server on loopback), flow runs on a Prefect server; runs side by side share it;
a scheduled deployment fires, and its run lands in the registry and the lineage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from registry.lineage import LineageStore, ancestry
from tests.services import S3_CREDENTIALS

pytestmark = pytest.mark.slow

TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"
NAME = "tiny-clip"
SCHEDULED_RUN_TIMEOUT_S = 420


def prefect_api(stack, path: str, body: dict | None = None, method: str | None = None, tries: int = 5) -> dict | list | None:
    """One call to the Prefect server's REST API. A 503 (the server busy: CI once got one deleting a deployment
    right after a triggered run) is tried again, 2 s apart, up to `tries` times in all."""
    request = urllib.request.Request(f"{stack.prefect.url}/api{path}", data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method=method or ("GET" if body is None else "POST"))
    for _ in range(tries - 1):
        try:
            return _answer(request)
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
        time.sleep(2)
    return _answer(request)


def _answer(request: urllib.request.Request) -> dict | list | None:
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def lineage_of(stack, version: str):
    store = LineageStore(stack.lineage_url)
    try:
        with store.session() as session:
            return ancestry(session, NAME, version)
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def first_run(stack, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("laptop") / "work"
    stack.mmops("run", str(TINY_CLIP), "--workdir", str(workdir))
    return workdir


def test_the_recipe_runs_unchanged_with_every_store_shared(stack, first_run, monkeypatch):
    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    version = client.get_model_version_by_alias(NAME, "production")
    assert str(version.version) == "1" and version.source.startswith("models:/")
    run = client.get_run(version.run_id)
    assert run.info.artifact_uri.startswith("s3://mmops-team/artifacts/tiny-clip/")

    models = stack.keys("artifacts/tiny-clip/models/")
    assert any(k.endswith("/MLmodel") for k in models) and any(k.endswith("model.safetensors") for k in models)
    stage_weights = stack.keys("artifacts/tiny-clip/")
    assert sum(k.endswith("weights/model.safetensors") for k in stage_weights) == 1  # the one stage's checkpoint
    assert len(stack.keys("dvc/files/md5/")) > 10, "the dataset's files were pushed to the S3 remote"
    assert not (first_run / "mlartifacts").exists() and not (first_run / "dvc-remote").exists()
    assert not (first_run / "mlflow.db").exists() and not (first_run / "lineage.db").exists()

    root = lineage_of(stack, "1")
    assert root.status == "production" and root.pipeline.mlflow_run_id == version.run_id
    assert {d.md5 for d in root.training_datasets()} == {version.tags["mmops.dataset.md5"]}
    flow_run = prefect_api(stack, f"/flow_runs/{root.pipeline.prefect_flow_run_id}")
    assert flow_run["state_type"] == "COMPLETED" and flow_run["name"]

    for name, value in {**S3_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": stack.s3.url}.items():
        monkeypatch.setenv(name, value)
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()  # set by earlier tests in the same process
    mlflow.set_tracking_uri(stack.tracking_uri)
    mlflow.set_registry_uri(stack.tracking_uri)
    try:
        files = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{NAME}@production"))
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    assert (files / "artifacts" / "model.safetensors").is_file()


def test_the_dvc_remote_on_s3_restores_the_dataset_on_another_machine(stack, first_run, tmp_path):
    clone = tmp_path / "datasets"
    subprocess.run(["git", "clone", "-q", str(first_run / "datasets"), str(clone)], check=True)
    env = {**stack.env, "AWS_ENDPOINT_URL_S3": stack.s3.url}  # the clone has no config.local: the endpoint comes from the environment
    pulled = subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=clone, env=env, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    images = sorted(p.name for p in (clone / "data" / "tiny-shapes").rglob("*.png"))
    assert images and images == sorted(p.name for p in (first_run / "datasets" / "data" / "tiny-shapes").rglob("*.png"))


def test_pipeline_runs_side_by_side_share_postgres_and_s3(stack, first_run, tmp_path):
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: stack.mmops("run", str(TINY_CLIP), "--workdir", str(tmp_path / f"w{i}"), status=None), range(2)))
    for result in results:
        assert result.returncode == 0, result.stderr[-4000:]
    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{NAME}'"))
    assert versions[-2:] == [versions[-2], versions[-2] + 1] and len(set(versions)) == len(versions)
    production = str(client.get_model_version_by_alias(NAME, "production").version)
    tagged = [str(v.version) for v in client.search_model_versions(f"name='{NAME}'") if v.tags.get("mmops.status") == "production"]
    assert tagged == [production], "exactly one version is production"
    for version in versions[-2:]:
        root = lineage_of(stack, str(version))
        assert root.pipeline.status == "finished" and root.pipeline.mlflow_run_id == client.get_model_version(NAME, str(version)).run_id


def test_a_scheduled_deployment_fires_and_its_run_lands_in_registry_and_lineage(stack, tmp_path):
    workdir = tmp_path / "scheduled"
    printed = stack.mmops("schedule", str(TINY_CLIP), "--cron", "* * * * *", "--pool", "mmops-test", "--workdir", str(workdir)).stdout
    deployment_id = printed.strip().splitlines()[-2].rsplit(" ", 1)[-1]
    listed = stack.mmops("schedules", "--workdir", str(workdir)).stdout
    assert "mmops-pipeline/tiny-clip  '* * * * *' UTC  pool mmops-test  next " in listed and str(TINY_CLIP) in listed

    worker_env = {**stack.env, "PREFECT_API_URL": f"{stack.prefect.url}/api", "PREFECT_HOME": str(tmp_path / "worker-home")}
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", "mmops-test", "--limit", "1"],
                                  stdout=output, stderr=subprocess.STDOUT, env=worker_env)
    try:
        completed = wait_for_completed_run(stack, deployment_id, worker, log)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        prefect_api(stack, f"/deployments/{deployment_id}", method="DELETE")  # and the runs it still had scheduled
    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    (version,) = [v for v in client.search_model_versions(f"name='{NAME}'") if v.tags.get("mmops.pipeline_run")
                  and client.get_run(v.tags["mmops.pipeline_run"]).data.tags.get("mmops.prefect_flow_run") == completed["id"]]
    root = lineage_of(stack, str(version.version))
    assert root.pipeline.prefect_flow_run_id == completed["id"] and root.pipeline.status == "finished"
    assert (workdir / "runs").is_dir(), "the scheduled run used the workdir it was scheduled with"


def wait_for_completed_run(stack, deployment_id: str, worker: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + SCHEDULED_RUN_TIMEOUT_S
    while True:
        runs = prefect_api(stack, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})
        done = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")]
        if done:
            assert done[0]["state_type"] == "COMPLETED", f"the scheduled run ended {done[0]['state_type']}:\n{log.read_text()[-4000:]}"
            return done[0]
        assert worker.poll() is None, f"the worker exited with {worker.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"no scheduled run finished in {SCHEDULED_RUN_TIMEOUT_S} s:\n{log.read_text()[-4000:]}"
        time.sleep(3)


def test_schedule_refuses_a_bad_cron_or_a_missing_server_before_touching_it(stack, tmp_path):
    bad = stack.mmops("schedule", str(TINY_CLIP), "--cron", "61 * * * *", "--workdir", str(tmp_path), status=2)
    assert "--cron '61 * * * *'" in bad.stderr and "allowed: five cron fields" in bad.stderr
    deployments = prefect_api(stack, "/deployments/filter", {})
    assert all(d["parameters"].get("workdir") != str(tmp_path) for d in deployments)
    env = {k: v for k, v in stack.env.items() if k != "MMOPS_PREFECT_API_URL"}
    result = subprocess.run([sys.executable, "-m", "mmops", "schedules", "--workdir", str(tmp_path)], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "set MMOPS_PREFECT_API_URL" in result.stderr


def test_infra_pools_and_prefect_yaml_apply_to_a_real_server(stack, tmp_path):
    root = Path(__file__).parents[2]
    env = {**stack.env, "PREFECT_API_URL": f"{stack.prefect.url}/api", "PREFECT_HOME": str(tmp_path / "home")}
    prefect = str(Path(sys.executable).with_name("prefect"))
    for pool, kind, template in (("mmops-process", "process", "process.json"), ("mmops-gpu", "kubernetes", "kubernetes-gpu.json")):
        made = subprocess.run([prefect, "work-pool", "create", pool, "--type", kind, "--overwrite",
                               "--base-job-template", str(root / "infra" / "work-pools" / template)], cwd=root, env=env, capture_output=True, text=True)
        assert made.returncode == 0, made.stdout + made.stderr
    deployed = subprocess.run([prefect, "--no-prompt", "deploy", "--all", "--prefect-file", "infra/prefect.yaml"],
                              cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    spec = yaml.safe_load((root / "infra" / "prefect.yaml").read_text())
    found = {d["name"]: d for d in prefect_api(stack, "/deployments/filter", {}) if d["name"] in {s["name"] for s in spec["deployments"]}}
    try:
        assert set(found) == {s["name"] for s in spec["deployments"]}
        gpu = found["video-dit-gpu"]
        assert gpu["work_pool_name"] == "mmops-gpu" and gpu["job_variables"] == {"gpu_count": 1, "memory_request": "64Gi"}
        assert [s["schedule"]["cron"] for s in found["demo-nightly"]["schedules"]] == ["0 2 * * *"]
        pool = prefect_api(stack, "/work_pools/mmops-gpu")
        assert pool["type"] == "kubernetes" and pool["base_job_template"]["variables"]["properties"]["gpu_count"]["default"] == 1
    finally:
        for deployment in found.values():
            prefect_api(stack, f"/deployments/{deployment['id']}", method="DELETE")
