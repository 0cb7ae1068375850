"""The whole flow on a tiny recipe, through the real CLI, Prefect (ephemeral API), DVC, Lightning and MLflow."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from PIL import Image

from mmops.settings import Settings
from registry.audit import read_events
from registry.lineage import LineageStore, alias_timeline, ancestry
from registry.tracking import client_for, tracking
from tests.services import free_port

pytestmark = pytest.mark.slow

TINY = Path(__file__).with_name("tiny_llava.yaml")
NAME = "tiny-llava"


def mmops(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, status: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "MMOPS_ACTOR": "e2e-tester", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "mmops", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert result.returncode == status, f"mmops {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("e2e") / "work"
    mmops("run", str(TINY), "--workdir", str(work))
    return work


@pytest.fixture(scope="module")
def client(workdir: Path):
    return client_for(Settings.for_workdir(workdir, env={}))


def test_first_run_registers_and_promotes_with_lineage(workdir: Path, client):
    model = client.get_registered_model(NAME)
    assert {k: str(v) for k, v in model.aliases.items()} == {"candidate": "1", "production": "1"}
    version = client.get_model_version(NAME, "1")
    tags = version.tags

    lock = yaml.safe_load((workdir / "datasets" / "dvc.lock").read_text())
    md5 = lock["stages"]["tiny-shapes"]["outs"][0]["md5"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workdir / "datasets", capture_output=True, text=True).stdout.strip()
    assert tags["mmops.dataset.md5"] == md5 and tags["mmops.dataset.git_rev"] == head
    assert tags["mmops.recipe.sha256"] == hashlib.sha256(TINY.read_bytes()).hexdigest()
    assert tags["mmops.status"] == "production" and tags["mmops.gate"] == "passed"
    assert tags["mmops.code.git_rev"]

    stage_runs = json.loads(tags["mmops.stage_runs"])
    assert list(stage_runs) == ["clip", "lm", "align", "instruct"]
    for stage, run_id in stage_runs.items():
        run = client.get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == tags["mmops.pipeline_run"] == version.run_id
        assert run.info.status == "FINISHED"
        assert "train/loss" in run.data.metrics and run.data.params["objective"]
        assert [d.dataset.digest for d in run.inputs.dataset_inputs] == [md5]
        history = client.get_metric_history(run_id, "train/loss")
        assert len(history) >= 1
    clip_run = client.get_run(stage_runs["clip"]).data
    assert {"zero_shot_accuracy", "probe_colour_accuracy", "probe_shape_accuracy"} <= clip_run.metrics.keys()
    assert clip_run.params["region_weight"] == "1.0" and {"train/clip_loss", "train/region_word_loss"} <= clip_run.metrics.keys()
    assert client.get_run(stage_runs["align"]).data.params["trainable"] == "connector"

    metrics = client.get_run(version.run_id).data.metrics
    assert {"vqa_exact_match", "grounding_iou50", "vqa_em_colour", "vqa_em_count"} <= metrics.keys()

    (event,) = read_events(workdir / "audit.jsonl", NAME)
    assert event["action"] == "promote" and event["version"] == "1" and event["previous"] is None
    assert event["actor"] == "mmops-gate" and event["evidence"]["candidate"]["vqa_exact_match"] == metrics["vqa_exact_match"]

    weights = list((workdir / "runs").rglob("*.safetensors"))
    assert len(weights) == 4 and not list((workdir / "runs").rglob("*.ckpt"))


def test_lineage_store_holds_the_full_ancestry_and_the_cli_prints_it(workdir: Path, client):
    settings = Settings.for_workdir(workdir, env={})
    store = LineageStore(settings.lineage_url)
    try:
        with store.session() as session:
            root = ancestry(session, NAME, "1")
            events = alias_timeline(session, NAME)
    finally:
        store.dispose()
    version = client.get_model_version(NAME, "1")
    assert (root.status, root.pipeline.mlflow_run_id, root.pipeline.status) == ("production", version.run_id, "finished")
    assert root.pipeline.recipe.sha256 == hashlib.sha256(TINY.read_bytes()).hexdigest()
    instruct = root.checkpoint.stage
    assert instruct.name == "instruct" and list(instruct.parent_checkpoints) == ["*"]
    align = instruct.parent_checkpoints["*"].stage
    assert align.name == "align"
    assert {part: c.stage.name for part, c in align.parent_checkpoints.items()} == {"vision": "clip", "language_model": "lm"}
    assert {d.md5 for d in root.training_datasets()} == {version.tags["mmops.dataset.md5"]}
    assert root.evaluation is not None and root.evaluation.metrics["vqa_exact_match"] == client.get_run(version.run_id).data.metrics["vqa_exact_match"]
    assert [(e.action, e.version) for e in events][:1] == [("promote", "1")]

    printed = mmops("lineage", f"{NAME}@production", "--workdir", str(workdir)).stdout
    for stage in ("instruct", "align", "clip", "lm"):
        assert f"stage {stage} (" in printed
    as_json = json.loads(mmops("lineage", f"{NAME}/1", "--json", "--workdir", str(workdir)).stdout)
    assert as_json["version"] == "1" and as_json["name"] == NAME


def test_production_model_answers_through_pyfunc(workdir: Path, client):
    image = next((workdir / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    buffer = io.BytesIO()
    Image.open(image).save(buffer, format="PNG")
    with tracking(Settings.for_workdir(workdir, env={})):
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@production")
        answers = model.predict(pd.DataFrame({"image": [str(image), buffer.getvalue()], "prompt": ["How many shapes are there?"] * 2}))
        model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{NAME}/1"))
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert answers[0] == answers[1], "the same image as a path and as PNG bytes must get the same answer"
    files = {p.name for p in model_dir.rglob("*") if p.is_file()}
    assert "model.safetensors" in files and "python_model.pkl" not in files and not any(f.endswith((".pkl", ".pt")) for f in files)


def test_second_run_makes_a_new_version_promoted_when_not_worse_then_rollback(workdir: Path, client):
    mmops("run", str(TINY), "--workdir", str(workdir))
    first, second = (client.get_model_version(NAME, v) for v in ("1", "2"))
    assert second.run_id != first.run_id
    assert second.tags["mmops.dataset.md5"] == first.tags["mmops.dataset.md5"], "same parameters, same dataset version"
    m1, m2 = (client.get_run(v.run_id).data.metrics["vqa_exact_match"] for v in (first, second))
    production = str(client.get_registered_model(NAME).aliases["production"])
    assert production == ("2" if m2 >= m1 else "1")

    result = mmops("rollback", NAME, "--reason", "e2e: back to the first", "--workdir", str(workdir)) if production == "2" else None
    if result is not None:
        assert "rolled back to version 1" in result.stdout
        assert str(client.get_registered_model(NAME).aliases["production"]) == "1"
        last = read_events(workdir / "audit.jsonl", NAME)[-1]
        assert (last["action"], last["actor"], last["reason"]) == ("rollback", "e2e-tester", "e2e: back to the first")
    store = LineageStore(Settings.for_workdir(workdir, env={}).lineage_url)
    try:
        with store.session() as session:
            timeline = [(e.action, e.version, e.actor) for e in alias_timeline(session, NAME)]
    finally:
        store.dispose()
    expected = [("promote", "1", "mmops-gate")]
    if production == "2":
        expected += [("promote", "2", "mmops-gate"), ("rollback", "1", "e2e-tester")]
    assert timeline == expected, "the lineage store's alias events must match the registry's, in order"


def test_a_recipe_that_requires_approval_waits_for_an_approver(workdir: Path, client, tmp_path: Path):
    recipe = yaml.safe_load(TINY.read_text())
    recipe["promotion"]["require_approval"] = True
    path = tmp_path / "tiny_approval.yaml"
    path.write_text(yaml.safe_dump(recipe))
    production = str(client.get_registered_model(NAME).aliases["production"])
    w = ("--workdir", str(workdir))

    result = mmops("run", str(path), *w)
    version = str(max(int(v.version) for v in client.search_model_versions(f"name='{NAME}'")))
    assert str(client.get_registered_model(NAME).aliases["production"]) == production, "a request moves nothing"
    assert f"mmops approve {NAME}" in result.stdout
    request = mmops("requests", NAME, *w).stdout.split()[0].lstrip("#")
    assert f"v{version}" in mmops("requests", NAME, *w).stdout

    alice = mmops("users", "add", "alice", "--role", "promote", *w).stdout.split()[-1]
    bob = mmops("users", "add", "bob", "--role", "approve", *w).stdout.split()[-1]
    assert alice not in (workdir / "access.yaml").read_text()
    refused = mmops("promote", NAME, version, "--reason", "no token", *w, env={"MMOPS_ACTOR": "alice"}, status=2)
    assert "set MMOPS_TOKEN" in refused.stderr
    refused = mmops("approve", NAME, request, "--reason", "mine", *w, env={"MMOPS_ACTOR": "alice", "MMOPS_TOKEN": alice}, status=2)
    assert "'alice' may not approve" in refused.stderr
    refused = mmops("approve", NAME, request, "--reason", "forged", *w, env={"MMOPS_ACTOR": "bob", "MMOPS_TOKEN": alice}, status=2)
    assert "unknown user or wrong token" in refused.stderr

    approved = mmops("approve", NAME, request, "--reason", "e2e: reviewed", *w, env={"MMOPS_ACTOR": "bob", "MMOPS_TOKEN": bob})
    assert f"production -> version {version}" in approved.stdout
    assert str(client.get_registered_model(NAME).aliases["production"]) == version
    assert "no pending promotion requests" in mmops("requests", NAME, *w).stdout
    last = read_events(workdir / "audit.jsonl", NAME)[-1]
    assert (last["action"], last["actor"], last["version"], last["evidence"]["requested_by"]) == ("promote", "bob", version, "mmops-gate")


def test_mlflow_models_serve_answers(workdir: Path):
    port = free_port()
    image = next((workdir / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    uri = Settings.for_workdir(workdir, env={}).tracking_uri
    # mlflow serve starts `uvicorn` by name: the venv's scripts must be on PATH, as in an activated venv
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, "PATH": path}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@production", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        body = json.dumps({"dataframe_records": [{"image": str(image), "prompt": "What shape is the red object?"}]}).encode()
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    payload = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
                time.sleep(1)
        assert isinstance(payload["predictions"], list) and len(payload["predictions"]) == 1
        assert isinstance(payload["predictions"][0], str)
    finally:
        server.terminate()
        server.wait(timeout=30)
