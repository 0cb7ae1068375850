"""A stage over processes the pipeline cannot start itself is trained by `mmops train-stage` on every rank of a
launcher (here torchrun with two processes on this machine, as on each node of a cluster), and `mmops run --resume`
carries the run on: registered once, the stage recorded by rank 0 alone; a launched stage that trains on what a data
stage wrote reads that version, and the data stage is written once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmops.settings import Settings
from registry.tracking import client_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_on_loopback_prefect")]
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"  # the data, towers and gate

# the second stage trains on what a data stage of the run writes (re-captioned videos beside the same images)
RECIPE = f"""\
base: {TINY_CLIP}
name: tiny-launched
data: {{videos: {{train: 6, val: 2, test: 2, frames: [1, 3], canvases: [[16, 16]], max_shapes: 1}}}}
distributed: {{strategy: ddp, devices: 2}}
stages:
  - {{name: towers, objective: contrastive, trainable: [vision, text, image_projection, text_projection, logit_scale],
     steps: 4, batch_size: 4, max_len: 48}}
  - {{name: recaption, objective: recaption}}
  - {{name: text, objective: contrastive, data: recaption, init: {{"*": towers}}, trainable: [text, text_projection], steps: 6,
     batch_size: 4, max_len: 48}}
"""


def mmops(*args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), "-m", "mmops", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def test_the_pipeline_stops_at_a_launched_stage_and_goes_on_after_torchrun_trains_it(tmp_path: Path):
    recipe, workdir = tmp_path / "tiny_launched.yaml", tmp_path / "work"
    recipe.write_text(RECIPE)
    # a single process is one stage at a time: the first stage trains in the pipeline too (ddp over 2 processes needs a
    # launcher there as well), so the pipeline stops before it
    stopped = mmops("run", str(recipe), "--workdir", str(workdir))
    assert stopped.returncode == 2, stopped.stderr[-3000:]
    assert f"run `mmops train-stage {recipe} towers` on every rank" in stopped.stderr
    client = client_for(Settings.for_workdir(workdir, env={}))
    assert client.search_model_versions("name='tiny-launched'") == []

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    # a stage out of order is refused before any process group forms, on every rank alike: one process shows it
    early = mmops("train-stage", str(recipe), "text", "--workdir", str(workdir))
    assert early.returncode != 0 and "starts from towers, which the run" in early.stdout + early.stderr
    train_on_both_ranks(recipe, workdir, "towers", torchrun)
    unwritten = mmops("train-stage", str(recipe), "text", "--workdir", str(workdir))
    assert unwritten.returncode != 0 and "what data stage recaption writes, which the run" in unwritten.stdout + unwritten.stderr

    # the pipeline goes on with the data stage and stops again at the next launched stage
    onto_text = mmops("run", str(recipe), "--resume", "--workdir", str(workdir))
    assert onto_text.returncode == 2 and f"`mmops train-stage {recipe} text` on every rank" in onto_text.stderr, onto_text.stderr[-3000:]
    train_on_both_ranks(recipe, workdir, "text", torchrun)

    under_launcher = mmops("run", str(recipe), "--workdir", str(workdir), launcher=torchrun)
    assert under_launcher.returncode != 0 and "once per rank" in under_launcher.stdout + under_launcher.stderr

    resumed = mmops("run", str(recipe), "--resume", "--workdir", str(workdir))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "stage text finished before the run stopped" in resumed.stdout + resumed.stderr
    assert "data stage recaption finished before the run stopped" in resumed.stdout + resumed.stderr, "written once, then reused"
    assert [str(v.version) for v in client.search_model_versions("name='tiny-launched'")] == ["1"]
    (run_dir,) = (workdir / "runs").iterdir()
    outcome = json.loads((run_dir / "stages" / "text" / "outcome.json").read_text())
    stage_runs = client.search_runs([client.get_experiment_by_name("tiny-launched").experiment_id], "tags.`mmops.stage` = 'text'")
    assert [r.info.run_id for r in stage_runs] == [outcome["run_id"]] and stage_runs[0].info.status == "FINISHED"
    assert stage_runs[0].data.params["distributed.strategy"] == "ddp" and stage_runs[0].data.params["distributed.devices"] == "2"
    written = json.loads((run_dir / "stages" / "recaption" / "outcome.json").read_text())["dataset"]
    (read,) = stage_runs[0].inputs.dataset_inputs
    assert (read.dataset.name, read.dataset.digest) == (written["name"], written["md5"]), "the launched stage read the data stage's version"


def train_on_both_ranks(recipe: Path, workdir: Path, stage: str, torchrun: list[str]) -> None:
    launched = mmops("train-stage", str(recipe), stage, "--workdir", str(workdir), launcher=torchrun)
    assert launched.returncode == 0, launched.stderr[-4000:]
    assert launched.stdout.count(f"stage {stage} trained in") == 1, "rank 0 alone reports and records"
    assert "rank 1" in launched.stderr and f"next: mmops run {recipe} --resume" in launched.stdout
