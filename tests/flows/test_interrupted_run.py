"""Which run `mmops run --resume` picks up: the latest of the recipe without a summary, not one still running, and
only with the recipe it started with; and which of its data stages it reuses."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from flows.context import DataStageOutcome
from flows.interrupted_run import RUN_FILE, SUMMARY_FILE, finished_data_outcome, save_data_outcome, stopped_run
from mmops.errors import PipelineError
from mmops.recipe import load_recipe
from registry.data_repo import DvcRemote, version_written_dataset

TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"


def started(runs: Path, folder: str, loaded, when: str, pid: int = 0, sha: str | None = None) -> Path:
    path = runs / folder
    path.mkdir(parents=True)
    record = {"recipe": loaded.recipe.name, "recipe_sha256": sha or loaded.sha256, "mlflow_run_id": folder, "started": when,
              "host": socket.gethostname(), "pid": pid}
    (path / RUN_FILE).write_text(json.dumps(record))
    return path


def test_the_latest_stopped_run_of_the_recipe_is_picked(tmp_path: Path):
    loaded, runs = load_recipe(TINY_CLIP), tmp_path / "runs"
    with pytest.raises(PipelineError, match="nothing to resume: no run of tiny-clip"):
        stopped_run(runs, loaded)
    older = started(runs, "tiny-clip-1", loaded, "2026-12-06T10:00:00")
    finished = started(runs, "tiny-clip-3", loaded, "2026-12-06T12:00:00")
    (finished / SUMMARY_FILE).write_text("{}")
    assert stopped_run(runs, loaded)[0] == older
    newer = started(runs, "tiny-clip-2", loaded, "2026-12-06T11:00:00")
    assert stopped_run(runs, loaded) == (newer, json.loads((newer / RUN_FILE).read_text()))


def test_a_run_still_going_is_not_resumed_and_a_changed_recipe_is_refused(tmp_path: Path):
    loaded, runs = load_recipe(TINY_CLIP), tmp_path / "runs"
    running = subprocess.Popen(["sleep", "60"])
    try:
        started(runs, "tiny-clip-1", loaded, "2026-12-06T10:00:00", pid=running.pid)
        with pytest.raises(PipelineError, match=f"has not stopped: process {running.pid} is still running it"):
            stopped_run(runs, loaded)
    finally:
        running.kill()
        running.wait()
    assert stopped_run(runs, loaded)[0].name == "tiny-clip-1"
    started(runs, "tiny-clip-2", loaded, "2026-12-06T11:00:00", sha="0" * 64)
    with pytest.raises(PipelineError, match="the recipe changed since the stopped run"):
        stopped_run(runs, loaded)


def test_a_data_stage_is_reused_only_while_the_version_it_wrote_is_the_datasets_current_one(tmp_path: Path):
    repo, remote = tmp_path / "datasets", DvcRemote(str(tmp_path / "remote"))
    write = lambda text: lambda folder: (folder / "captions.json").write_text(text)  # noqa: E731
    first = version_written_dataset(repo, remote, "shapes-recaptioned", write('["a red square"]'), "first")
    stage_dir = tmp_path / "runs" / "tiny-1" / "stages" / "recaption"
    assert finished_data_outcome(stage_dir, repo) is None, "nothing saved: the stage runs"
    outcome = DataStageOutcome("recaption", "run-1", first, 1.5, {"captions": 1.0}, {"models:/x@production": "x/2"})
    save_data_outcome(stage_dir, outcome)
    assert finished_data_outcome(stage_dir, repo) == outcome

    version_written_dataset(repo, remote, "shapes-recaptioned", write('["a blue circle"]'), "second")
    assert finished_data_outcome(stage_dir, repo) is None, "written again since: the saved version is not what is there"
