"""recipes/llava15_hf.yaml through `mmops run`, its paths pointed at tiny pretrained towers: the
stages keep LLaVA-1.5's freeze plans on the HF weights, and the registered model answers after the
pretrained directories are gone (it carries their configs and its own safetensors only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, CLIPVisionModel

from registry.tracking import tracking
from tests.e2e.test_families import run_family

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_on_loopback_prefect")]

ROOT = Path(__file__).resolve().parents[2]
HF_RECIPE = ROOT / "recipes" / "llava15_hf.yaml"


def tiny_recipe(tmp_path: Path) -> Path:
    """llava15_hf.yaml with relative paths to the tiny models (read from the directory mmops runs in),
    toy data and steps; its stages' names, objectives, init and freeze plans stay the shipped ones."""
    stages = yaml.safe_load(HF_RECIPE.read_text())["stages"]
    path = tmp_path / "tiny_llava15_hf.yaml"
    path.write_text(yaml.safe_dump({
        "base": str(HF_RECIPE),
        "name": "tiny-llava15-hf",
        "data": {"name": "tiny-shapes-hf", "shapes": {"seed": 1, "image_size": 32, "train": 48, "val": 8, "test": 12, "max_shapes": 2},
                 "tokenizer": {"pretrained": "models/llama"}},
        "model": {"vision": {"pretrained": "models/clip"}, "language_model": {"pretrained": "models/llama"}},
        "stages": [{**stage, "steps": 3, "batch_size": 8, "log_every": 1} for stage in stages],
        "evaluation": {"batch_size": 16, "max_new_tokens": 8, "limit": 6},
        "promotion": {"thresholds": {"vqa_exact_match": 0.0}, "not_worse_than_production": ["vqa_exact_match"]},
    }))
    return path


def test_llava15_hf_trains_its_freeze_plans_on_pretrained_towers_and_serves_without_them(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    models = tmp_path / "models"
    for name in ("clip", "llama"):
        shutil.copytree(tiny_hf_dirs[name], models / name)
    run = run_family(str(tiny_recipe(tmp_path)), tmp_path / "work", cwd=tmp_path)
    assert list(run.stage_runs) == ["align", "instruct"]
    assert {run.client.get_run(r).data.params["trainable"] for r in run.stage_runs.values()} == {"connector", "connector,language_model"}
    assert "vqa_exact_match" in run.client.get_run(run.version.run_id).data.metrics

    # stage 1 kept both pretrained towers bit for bit (the LM's table grew by <pad> and <image>)
    align, instruct = run.stage_weights("align"), run.stage_weights("instruct")
    references = {
        "vision.hf.": CLIPVisionModel.from_pretrained(models / "clip", use_safetensors=True).state_dict(),
        "language_model.hf.": AutoModelForCausalLM.from_pretrained(models / "llama", use_safetensors=True).state_dict(),
    }
    for prefix, reference in references.items():
        ours = {name.removeprefix(prefix): tensor for name, tensor in align.items() if name.startswith(prefix)}
        assert ours.keys() == reference.keys()
        for name, tensor in reference.items():
            assert torch.equal(ours[name][: len(tensor)], tensor), name
    # stage 2 trained the projector and the LM, the tower stayed frozen
    for name, tensor in instruct.items():
        assert torch.equal(tensor, align[name]) == name.startswith("vision."), name

    # the registered model carries the towers' configs, and no weights but its own
    with tracking(run.settings):
        artifacts = Path(mlflow.artifacts.download_artifacts(run.version.source, dst_path=str(tmp_path / "served")))
    assert [p.name for p in artifacts.rglob("*.safetensors")] == ["model.safetensors"]
    assert (artifacts / "artifacts" / "vision_hf_config" / "config.json").is_file()

    shutil.rmtree(models)  # the served model rebuilds the towers from the logged configs
    image = next((run.work / "datasets" / "data" / "tiny-shapes-hf" / "images" / "test").glob("*.png"))
    answers = run.answer(image)
    assert len(answers) == 1 and isinstance(answers[0], str)
