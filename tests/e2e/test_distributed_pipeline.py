"""A recipe whose stages train on two DDP processes runs through `mmops run` like any other: both ranks train,
rank 0's weights come back to the pipeline, and they are what is evaluated and registered. The two devices are
the machine's setting (MMOPS_DEVICES) over the recipe's one: the same recipe trains wider where settings say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from components.data.build import load_dataset_tokenizer
from components.training.checkpoints import load_weights
from components.training.stage_models import build_stage_model
from mmops.recipe import load_recipe
from mmops.settings import Settings
from registry.tracking import client_for

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).with_name("tiny_clip_ddp.yaml")


def test_a_ddp_recipe_trains_on_two_processes_and_registers_rank_zeros_weights(tmp_path: Path):
    workdir = tmp_path / "work"
    result = subprocess.run([sys.executable, "-m", "mmops", "run", str(RECIPE), "--workdir", str(workdir)],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "MMOPS_DEVICES": "2"}, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output

    client = client_for(Settings.for_workdir(workdir, env={}))
    version = client.get_model_version("tiny-clip-ddp", "1")
    stage_run = client.get_run(json.loads(version.tags["mmops.stage_runs"])["clip"])
    assert stage_run.data.params["distributed.devices"] == "2" and stage_run.data.params["distributed.strategy"] == "ddp_spawn"

    recipe = load_recipe(RECIPE).recipe
    assert recipe.distributed.devices == 1, "the recipe alone asks for one process"
    (weights_path,) = (workdir / "runs").glob("*/stages/clip/*.safetensors")
    trained = load_weights(weights_path)
    torch.manual_seed(recipe.stages[0].seed)  # the stage's starting weights, as the stage task builds them
    start = build_stage_model("contrastive", recipe.model, load_dataset_tokenizer(workdir / "datasets" / "data" / recipe.data.name)).state_dict()
    moved = [name for name, tensor in trained.items() if not torch.equal(tensor, start[name])]
    assert len(moved) > len(trained) // 2, "the weights the pipeline kept are the trained ones, not the untouched copy in the main process"
