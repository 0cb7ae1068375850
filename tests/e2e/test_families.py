"""Families other than LLaVA through the same `mmops run` flow: trained, evaluated, registered, promoted."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch

from mmops.settings import Settings
from registry.tracking import client_for, tracking
from tests.e2e.test_pipeline import mmops

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent


def test_blip2_runs_through_the_flow_with_its_qformer_frozen_in_stage_two(tmp_path: Path):
    work = tmp_path / "work"
    mmops("run", str(HERE / "tiny_blip2.yaml"), "--workdir", str(work))
    client = client_for(Settings.for_workdir(work, env={}))
    model = client.get_registered_model("tiny-blip2")
    assert {k: str(v) for k, v in model.aliases.items()} == {"candidate": "1", "production": "1"}
    version = client.get_model_version("tiny-blip2", "1")
    stage_runs = json.loads(version.tags["mmops.stage_runs"])
    assert list(stage_runs) == ["clip", "qformer", "lm", "generate", "vqa"]
    qformer_metrics = client.get_run(stage_runs["qformer"]).data.metrics
    assert {"train/itc", "train/itm", "train/itg", "train/itm_acc"} <= qformer_metrics.keys()
    assert client.get_run(stage_runs["generate"]).data.params["trainable"] == "connector.proj"
    assert "vqa_exact_match" in client.get_run(version.run_id).data.metrics

    # stage 2 kept the stage-1 Q-Former bit for bit
    from safetensors.torch import load_file

    run_dir = next(Settings.for_workdir(work, env={}).runs_dir.glob("tiny-blip2-*"))
    stage1 = load_file(str(run_dir / "stages" / "qformer" / "model.safetensors"))
    stage2 = load_file(str(run_dir / "stages" / "generate" / "model.safetensors"))
    for name, tensor in stage1.items():
        if name.startswith("qformer."):
            assert torch.equal(stage2[f"connector.{name}"], tensor), name

    # the registered BLIP-2 model rebuilds its Q-Former connector from the logged config and answers
    image = next((work / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    with tracking(Settings.for_workdir(work, env={})):
        served = mlflow.pyfunc.load_model("models:/tiny-blip2@production")
        answers = served.predict(pd.DataFrame({"image": [str(image)], "prompt": ["How many shapes are there?"]}))
    assert len(answers) == 1 and isinstance(answers[0], str)
