"""A run killed with SIGKILL while a stage trains is resumed by `mmops run --resume`: the finished stage is reused,
the killed one goes on from its last checkpoint, and in deterministic mode the weights are those of a run never
killed. The killed run registered nothing and is closed as failed in MLflow and the lineage store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from sqlalchemy import select

from mmops.settings import Settings
from registry.lineage import open_store
from registry.lineage.schema import PipelineRun
from registry.model_versions import WEIGHTS_FILE
from registry.tracking import client_for

pytestmark = pytest.mark.slow
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"  # the data, towers and gate

RECIPE = f"""\
base: {TINY_CLIP}
name: tiny-resume
distributed: {{deterministic: true}}
stages:
  - {{name: towers, objective: contrastive, trainable: [vision, text, image_projection, text_projection, logit_scale],
     steps: 12, batch_size: 8, max_len: 48, checkpoint_every: 5}}
  - {{name: text, objective: contrastive, init: {{"*": towers}}, trainable: [text, text_projection], label_prompts: 0.5,
     steps: 80, batch_size: 8, max_len: 48, checkpoint_every: 10}}
"""


def mmops(*args: str, workdir: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmops", *args, "--workdir", str(workdir)], capture_output=True, text=True, timeout=900, **kwargs)


def run_dir(workdir: Path) -> Path:
    (folder,) = (workdir / "runs").iterdir()
    return folder


def kill_when_checkpointed(recipe: Path, workdir: Path) -> None:
    """Start a run and kill it, server and all, once its second stage has saved a checkpoint."""
    process = subprocess.Popen([sys.executable, "-m", "mmops", "run", str(recipe), "--workdir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while not list(workdir.glob("runs/*/stages/text/checkpoints/step-*/state.json")):
            assert process.poll() is None, f"the run ended (exit {process.returncode}) before the second stage saved a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint of the second stage within 10 minutes"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def test_a_killed_run_resumes_to_the_weights_of_an_unbroken_one(tmp_path: Path):
    recipe = tmp_path / "tiny_resume.yaml"
    recipe.write_text(RECIPE)
    unbroken = mmops("run", str(recipe), workdir=tmp_path / "unbroken")
    assert unbroken.returncode == 0, unbroken.stderr[-4000:]

    workdir = tmp_path / "killed"
    kill_when_checkpointed(recipe, workdir)
    stopped = run_dir(workdir)
    assert not (stopped / "summary.json").exists() and (stopped / "stages" / "towers" / "outcome.json").is_file()
    client = client_for(Settings.for_workdir(workdir, env={}))
    assert client.search_model_versions("name='tiny-resume'") == [], "a killed run registers nothing"
    towers_run = client.search_runs([client.get_experiment_by_name("tiny-resume").experiment_id], "tags.`mmops.stage` = 'towers'")[0]

    changed = tmp_path / "changed.yaml"
    changed.write_text(RECIPE + "# edited\n")
    refused = mmops("run", str(changed), "--resume", workdir=workdir)
    assert refused.returncode == 2 and "the recipe changed since the stopped run" in refused.stderr, refused.stderr[-2000:]

    resumed = mmops("run", str(recipe), "--resume", workdir=workdir)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "stage towers finished before the run stopped" in resumed.stdout + resumed.stderr
    assert "stage text resumed from" in resumed.stdout + resumed.stderr
    assert run_dir(workdir) == stopped and (stopped / "summary.json").is_file()
    assert not (stopped / "stages" / "text" / "checkpoints").exists(), "checkpoints go once the weights are written"

    expected = load_file(run_dir(tmp_path / "unbroken") / "stages" / "text" / WEIGHTS_FILE)
    got = load_file(stopped / "stages" / "text" / WEIGHTS_FILE)
    different = [name for name in expected if not expected[name].equal(got[name])]
    assert expected.keys() == got.keys() and not different, f"{len(different)} tensors differ, e.g. {different[:3]}"

    assert [str(v.version) for v in client.search_model_versions("name='tiny-resume'")] == ["1"]
    pipelines = {r.info.run_id: r for r in client.search_runs([towers_run.info.experiment_id], "tags.`mmops.stage` IS NULL")}
    (killed_id,) = [i for i, r in pipelines.items() if "mmops.resumed_by" in r.data.tags]
    assert pipelines[killed_id].info.status == "FAILED"
    (resumed_id,) = [i for i, r in pipelines.items() if r.data.tags.get("mmops.resumed_from") == killed_id]
    assert pipelines[resumed_id].info.status == "FINISHED"
    assert client.get_run(towers_run.info.run_id).data.tags["mlflow.parentRunId"] == killed_id  # reused, not retrained
    with open_store(Settings.for_workdir(workdir, env={}).lineage_url) as store, store.session() as session:
        runs = {r.mlflow_run_id: r for r in session.scalars(select(PipelineRun))}
        assert runs[killed_id].status == "failed" and f"resumed by run {resumed_id}" in runs[killed_id].error
        assert runs[resumed_id].status == "finished"

    again = mmops("run", str(recipe), "--resume", workdir=workdir)
    assert again.returncode == 2 and "nothing to resume" in again.stderr
