"""`mmops run` stopped with SIGTERM while a stage trains (a scheduler's or a container's stop) ends cleanly: its
MLflow run and lineage record are closed as failed, nothing is registered, no Prefect server is left behind, and
`--resume` continues it from its last checkpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from mmops.settings import Settings
from registry.lineage import open_store
from registry.lineage.schema import PipelineRun
from registry.tracking import client_for

pytestmark = pytest.mark.slow
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"

RECIPE = f"""\
base: {TINY_CLIP}
name: tiny-sigterm
stages:
  - {{name: towers, objective: contrastive, trainable: [vision, text, image_projection, text_projection, logit_scale],
     steps: 400, batch_size: 8, max_len: 48, checkpoint_every: 10}}
"""


def test_a_terminated_run_closes_its_records_and_leaves_no_server(tmp_path: Path):
    recipe, workdir = tmp_path / "tiny_sigterm.yaml", tmp_path / "work"
    recipe.write_text(RECIPE)
    process = subprocess.Popen([sys.executable, "-m", "mmops", "run", str(recipe), "--workdir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while not list(workdir.glob("runs/*/stages/towers/checkpoints/step-*/state.json")):  # training, well under way
            assert process.poll() is None, f"the run ended (exit {process.returncode}) before it trained"
            assert time.monotonic() < deadline, "no training checkpoint within 10 minutes"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)  # to mmops alone, as `kill` does; its server is its child
        _, stderr = process.communicate(timeout=120)  # an orphaned server would hold stderr open past this
        assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
        time.sleep(2)  # the server's own shutdown
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # nothing of the run's process group is left: no orphaned Prefect server
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever a failure above left
        except ProcessLookupError:
            pass
        process.wait()

    client = client_for(Settings.for_workdir(workdir, env={}))
    experiment = client.get_experiment_by_name("tiny-sigterm").experiment_id
    statuses = {run.data.tags.get("mmops.stage", "pipeline"): run.info.status for run in client.search_runs([experiment])}
    assert statuses == {"pipeline": "FAILED", "towers": "FAILED"}
    assert client.search_model_versions("name='tiny-sigterm'") == []
    with open_store(Settings.for_workdir(workdir, env={}).lineage_url) as store, store.session() as session:
        assert [run.status for run in session.scalars(select(PipelineRun))] == ["failed"]

    resumed = subprocess.run([sys.executable, "-m", "mmops", "run", str(recipe), "--resume", "--workdir", str(workdir)],
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert re.search(r"stage towers resumed from \S*/checkpoints/step-\d+", resumed.stdout + resumed.stderr), "from its checkpoint"
    assert [str(v.version) for v in client.search_model_versions("name='tiny-sigterm'")] == ["1"]
