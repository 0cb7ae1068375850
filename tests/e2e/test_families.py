"""Families other than LLaVA through the same `mmops run` flow: trained, evaluated, registered, promoted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from mmops.settings import Settings
from registry.tracking import client_for, tracking
from tests.dashboards.app_testing import DEFAULT_PAGE, open_app
from tests.e2e.test_pipeline import mmops

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_on_loopback_prefect")]

HERE = Path(__file__).parent


@dataclass
class FamilyRun:
    """A tiny recipe run through `mmops run` in a workdir, and its registered version 1."""

    work: Path
    settings: Settings
    client: MlflowClient
    version: ModelVersion
    stage_runs: dict[str, str]

    def stage_weights(self, stage: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        run_dir = next(self.settings.runs_dir.glob(f"{self.version.name}-2*"))
        return load_file(str(run_dir / "stages" / stage / "model.safetensors"))

    def answer(self, image: Path, prompt: str = "How many shapes are there?") -> list[str]:
        """What the registered version, served by MLflow's pyfunc, answers about one image."""
        with tracking(self.settings):
            served = mlflow.pyfunc.load_model(f"models:/{self.version.name}/{self.version.version}")
            return served.predict(pd.DataFrame({"image": [str(image)], "prompt": [prompt]}))


def run_family(recipe: str, work: Path, cwd: Path | None = None) -> FamilyRun:
    """`recipe`: a file in tests/e2e or an absolute path; `cwd`: where mmops runs (relative paths in the recipe)."""
    mmops("run", str(HERE / recipe), "--workdir", str(work), cwd=cwd)
    settings = Settings.for_workdir(work, env={})
    client = client_for(settings)
    name = yaml.safe_load((HERE / recipe).read_text())["name"]
    version = client.get_model_version(name, "1")
    return FamilyRun(work, settings, client, version, json.loads(version.tags["mmops.stage_runs"]))


@pytest.fixture(scope="module")
def blip2_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir where tiny-blip2 version 1 was trained and promoted (MiniGPT-4 starts from it)."""
    work = tmp_path_factory.mktemp("families") / "work"
    mmops("run", str(HERE / "tiny_blip2.yaml"), "--workdir", str(work))
    return work


def test_blip2_runs_through_the_flow_with_its_qformer_frozen_in_stage_two(blip2_workdir: Path):
    work = blip2_workdir
    client = client_for(Settings.for_workdir(work, env={}))
    model = client.get_registered_model("tiny-blip2")
    assert {k: str(v) for k, v in model.aliases.items()} == {"candidate": "1", "production": "1"}
    version = client.get_model_version("tiny-blip2", "1")
    stage_runs = json.loads(version.tags["mmops.stage_runs"])
    assert list(stage_runs) == ["clip", "qformer", "lm", "generate", "vqa"]
    qformer_metrics = client.get_run(stage_runs["qformer"]).data.metrics
    assert {"train/itc", "train/itm", "train/itg", "train/itm_acc"} <= qformer_metrics.keys()
    assert client.get_run(stage_runs["generate"]).data.params["trainable"] == "connector.proj"
    assert client.get_run(stage_runs["lm"]).data.params["text_corpus"] == "described"
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


def test_minigpt4_trains_only_a_linear_layer_on_the_registered_blip2_and_records_the_edge(blip2_workdir: Path):
    work = blip2_workdir
    settings = Settings.for_workdir(work, env={})
    mmops("run", str(HERE / "tiny_minigpt4.yaml"), "--workdir", str(work))
    client = client_for(settings)
    version = client.get_model_version("tiny-minigpt4", "1")
    assert version.tags["mmops.parent_models"] == "tiny-blip2/1"
    stage_runs = json.loads(version.tags["mmops.stage_runs"])
    assert list(stage_runs) == ["pretrain", "finetune"]
    for run_id in stage_runs.values():
        run = client.get_run(run_id)
        assert run.data.params["trainable"] == "connector.proj"
    assert client.get_run(stage_runs["pretrain"]).data.tags["mmops.parent_model.tiny-blip2:production"] == "tiny-blip2/1"

    # everything but the new linear layer is the BLIP-2 version's, bit for bit
    from safetensors.torch import load_file

    blip2_dir = next(settings.runs_dir.glob("tiny-blip2-*"))
    minigpt4_dir = next(settings.runs_dir.glob("tiny-minigpt4-*"))
    blip2 = load_file(str(blip2_dir / "stages" / "vqa" / "model.safetensors"))
    minigpt4 = load_file(str(minigpt4_dir / "stages" / "finetune" / "model.safetensors"))
    assert blip2.keys() == minigpt4.keys()
    changed = {name for name, tensor in minigpt4.items() if not torch.equal(tensor, blip2[name])}
    assert changed and all(name.startswith("connector.proj.") for name in changed), changed

    # the lineage store links the two models: MiniGPT-4's ancestry reaches the BLIP-2 version
    tree = mmops("lineage", "tiny-minigpt4/1", "--workdir", str(work)).stdout
    assert "from model:" in tree and "tiny-blip2 v1" in tree


def test_a_parent_model_trained_with_another_tokenizer_is_refused(blip2_workdir: Path, tmp_path: Path):
    recipe = tmp_path / "other_data.yaml"
    recipe.write_text(f"base: {HERE / 'tiny_minigpt4.yaml'}\nname: tiny-minigpt4-other\n"
                      "data: {name: tiny-shapes-other, shapes: {seed: 7}}\n")
    result = mmops("run", str(recipe), "--workdir", str(blip2_workdir), status=2)
    assert "was trained with a different tokenizer" in result.stderr
    client = client_for(Settings.for_workdir(blip2_workdir, env={}))
    assert not client.search_model_versions("name='tiny-minigpt4-other'")


def test_a_missing_parent_model_fails_before_anything_is_trained(tmp_path: Path):
    work = tmp_path / "work"
    result = mmops("run", str(HERE / "tiny_minigpt4.yaml"), "--workdir", str(work), status=2)
    assert "tiny-blip2" in result.stderr and "has no" in result.stderr
    assert not (work / "datasets").exists() and not list(Settings.for_workdir(work, env={}).runs_dir.glob("*"))


def test_qwen_vl_runs_its_three_stages_with_the_seed_freeze_plan(tmp_path: Path):
    run = run_family("tiny_qwen_vl.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "lm", "pretrain", "multitask", "sft"]
    trainable = {name: run.client.get_run(run_id).data.params["trainable"] for name, run_id in run.stage_runs.items()}
    assert trainable["pretrain"] == "vision,connector"
    assert trainable["multitask"] == "vision,connector,language_model"
    assert trainable["sft"] == "connector,language_model"

    weights = {name: run.stage_weights(name) for name in ("lm", "pretrain", "multitask", "sft")}
    frozen_lm = {k: v for k, v in weights["pretrain"].items() if k.startswith("language_model.")}
    assert frozen_lm and all(torch.equal(v, weights["lm"][k]) for k, v in frozen_lm.items())  # stage 1: LM frozen
    for name, tensor in weights["sft"].items():  # stage 3: the tower frozen
        if name.startswith("vision."):
            assert torch.equal(tensor, weights["multitask"][name]), name
    assert "connector.queries" in weights["sft"]
    assert "vqa_exact_match" in run.client.get_run(run.version.run_id).data.metrics


def test_cogvlm_trains_visual_experts_started_from_the_lm_and_fine_tunes_the_lm_at_a_tenth_of_the_rate(tmp_path: Path):
    run = run_family("tiny_cogvlm.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "lm", "pretrain", "grounding", "sft"]
    sft = run.client.get_run(run.stage_runs["sft"]).data.params
    assert sft["trainable"] == "connector,visual_expert,language_model"
    assert json.loads(sft["optimizer.lr_scale"]) == {"language_model": 0.1}

    lm, pretrain, grounding, sft_weights = (run.stage_weights(s) for s in ("lm", "pretrain", "grounding", "sft"))
    for name, tensor in lm.items():  # stage 1 keeps the LM frozen ...
        assert torch.equal(pretrain[name], tensor), name
    # ... while the experts, started as copies of its layers, trained
    assert not torch.equal(pretrain["visual_expert.0.qkv.weight"], lm["language_model.blocks.0.attn.qkv.weight"])
    for name, tensor in sft_weights.items():  # SFT: everything but the tower
        if name.startswith("vision."):
            assert torch.equal(tensor, grounding[name]), name
    assert not torch.equal(sft_weights["language_model.blocks.0.attn.qkv.weight"], grounding["language_model.blocks.0.attn.qkv.weight"])

    # the served model rebuilds the experts from the logged config and answers
    image = next((run.work / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    answers = run.answer(image)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_llava16_trains_on_variable_aspect_scenes_with_any_resolution_tiles(tmp_path: Path):
    run = run_family("tiny_llava16.yaml", tmp_path / "work")
    assert run.client.get_run(run.stage_runs["align"]).data.params["trainable"] == "connector,image_newline"
    # region-word alignment on wide and tall scenes: their boxes are fractions of the squashed view
    assert "train/region_word_loss" in run.client.get_run(run.stage_runs["clip"]).data.metrics
    assert "vqa_exact_match" in run.client.get_run(run.version.run_id).data.metrics

    from PIL import Image

    images = sorted((run.work / "datasets" / "data" / "tiny-shapes-aspects" / "images" / "test").glob("*.png"))
    assert {Image.open(p).size for p in images} == {(32, 32), (64, 32), (32, 64)}  # (width, height)
    wide = next(p for p in images if Image.open(p).size == (64, 32))
    answers = run.answer(wide)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_flamingo_trains_only_its_resampler_and_gates_on_interleaved_sequences_and_is_evaluated_few_shot(tmp_path: Path):
    run = run_family("tiny_flamingo.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "lm", "interleaved"]
    assert run.client.get_run(run.stage_runs["interleaved"]).data.params["trainable"] == "connector,gated_cross_attention"

    clip, lm, flamingo = (run.stage_weights(s) for s in ("clip", "lm", "interleaved"))
    for name, tensor in flamingo.items():  # the tower and the LM frozen, bit for bit
        if name.startswith("vision."):
            assert torch.equal(tensor, clip[name]), name
        if name.startswith("language_model."):
            assert torch.equal(tensor, lm[name]), name
    gates = [v for k, v in flamingo.items() if k.startswith("gated_cross_attention.") and k.endswith("gate")]
    # one block (LM depth 2, one before every 2 blocks): its attention and feed-forward gates moved off zero
    assert len(gates) == 2 and all(bool(g.abs().sum() > 0) for g in gates)
    assert "connector.latents" in flamingo

    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"vqa_exact_match", "vqa_exact_match_0shot"} <= metrics.keys()  # two-shot, and zero-shot beside it
    image = next((run.work / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    answers = run.answer(image)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_clip_is_evaluated_by_zero_shot_and_retrieval_and_served_as_an_embedder(tmp_path: Path):
    run = run_family("tiny_clip.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip"]
    assert {k: str(v) for k, v in run.client.get_registered_model("tiny-clip").aliases.items()} == {"candidate": "1", "production": "1"}
    metrics = run.client.get_run(run.version.run_id).data.metrics
    recall = {f"{d}_r{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)}
    assert recall <= metrics.keys() and "vqa_exact_match" not in metrics
    assert all(0.0 <= metrics[key] <= 1.0 for key in recall)
    assert json.loads(run.version.tags["mmops.gate.evidence"])["candidate"]["i2t_r1"] == metrics["i2t_r1"]
    listed = mmops("models", "--workdir", str(run.work)).stdout  # the registry listing shows what the gate judged
    assert "tiny-clip" in listed and f"i2t_r1={metrics['i2t_r1']:.4f}" in listed and "t2i_r10" not in listed

    # the served model scores an image against its own caption as the evaluation did
    local = Path(run.client.download_artifacts(run.version.run_id, "evaluation/predictions_test.json", str(tmp_path)))
    best = json.loads(local.read_text())[0]
    image = run.work / "datasets" / "data" / "tiny-shapes" / best["image"]
    top = best["retrieved"][0]
    with tracking(run.settings):
        served = mlflow.pyfunc.load_model("models:/tiny-clip@production")
        out = served.predict(pd.DataFrame({
            "image": [str(image), None],
            "text": [top["caption"], "a red circle"],
            "candidates": [[top["caption"], "nothing at all"], None],
        }))
    assert out.loc[0, "similarity"] == pytest.approx(top["score"], abs=1e-3)
    image_emb, text_emb = torch.tensor(out.loc[0, "image_embedding"]), torch.tensor(out.loc[1, "text_embedding"])
    assert image_emb.norm().item() == pytest.approx(1.0, abs=1e-4) and text_emb.norm().item() == pytest.approx(1.0, abs=1e-4)
    assert out.loc[1, "image_embedding"] is None and pd.isna(out.loc[1, "label"])  # a text row has no image to label
    scores = out.loc[0, "scores"]
    assert set(scores) == {top["caption"], "nothing at all"} and sum(scores.values()) == pytest.approx(1.0)
    assert out.loc[0, "label"] == max(scores, key=scores.get)


def test_unicl_trains_with_label_prompts_and_is_evaluated_like_clip(tmp_path: Path):
    run = run_family("tiny_unicl.yaml", tmp_path / "work")
    stage = run.client.get_run(run.stage_runs["unicl"]).data
    assert stage.params["label_prompts"] == "0.5" and "train/loss" in stage.metrics
    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"i2t_r1", "t2i_r1"} <= metrics.keys()
    assert str(run.client.get_registered_model("tiny-unicl").aliases["production"]) == "1"


def test_blip_pretrains_with_its_three_losses_and_is_served_as_an_embedder(tmp_path: Path):
    run = run_family("tiny_blip.yaml", tmp_path / "work")
    stage = run.client.get_run(run.stage_runs["blip"]).data.metrics
    assert {"train/itc", "train/itm", "train/lm", "train/itm_acc"} <= stage.keys()
    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"i2t_r1", "t2i_r1", "i2t_r10"} <= metrics.keys()
    assert str(run.client.get_registered_model("tiny-blip").aliases["production"]) == "1"
    image = next((run.work / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    with tracking(run.settings):
        out = mlflow.pyfunc.load_model("models:/tiny-blip@production").predict(
            pd.DataFrame({"image": [str(image)], "candidates": ["a red circle|a blue square"]}))
    assert out.loc[0, "label"] in {"a red circle", "a blue square"} and len(out.loc[0, "image_embedding"]) == 16


def test_capfilt_writes_a_dataset_version_a_later_stage_trains_on_and_the_lineage_runs_through_it(tmp_path: Path):
    from registry.lineage import ancestry, dataset_descendants, open_store

    run = run_family("tiny_blip_capfilt.yaml", tmp_path / "work")
    repo = run.work / "datasets"
    written = repo / "data" / "tiny-noisy-capfilt"
    noisy = repo / "data" / "tiny-noisy"
    # the bootstrapped captions: originals the filter kept and synthetic ones, every image a source image
    kept = json.loads((written / "captions_train.json").read_text())
    report = json.loads((written / "capfilt.json").read_text())
    assert report["samples"] == len(kept) and report["model"] == "noisy"
    assert {"kept_original", "kept_synthetic", "noise_removed", "clean_kept"} <= report["statistics"].keys()
    assert all((noisy / s["image"]).is_file() for s in kept)
    assert (written / "captions_test.json").read_bytes() == (noisy / "captions_test.json").read_bytes()
    # a DVC version of its own, committed to the dataset repository's git and pushed
    dvc_file = yaml.safe_load((repo / "data" / "tiny-noisy-capfilt.dvc").read_text())
    md5 = dvc_file["outs"][0]["md5"]
    assert run.version.tags["mmops.datasets_written"] == f"tiny-noisy-capfilt@{md5}"

    capfilt = run.client.get_run(run.stage_runs["capfilt"])
    assert {"kept_original", "kept_synthetic", "noise_removed", "clean_kept", "samples_written"} <= capfilt.data.metrics.keys()
    assert capfilt.data.params["model"] == "noisy" and capfilt.data.tags["mmops.dataset_written"].endswith(md5)
    bootstrap = run.client.get_run(run.stage_runs["bootstrap"])
    assert [d.dataset.digest for d in bootstrap.inputs.dataset_inputs] == [md5], "bootstrap must train on the written version"
    assert str(run.client.get_registered_model("tiny-blip-capfilt").aliases["production"]) == "1"

    with open_store(run.settings.lineage_url) as store, store.session() as session:
        root = ancestry(session, "tiny-blip-capfilt", "1")
        fed = dataset_descendants(session, run.version.tags["mmops.dataset.md5"])
    (read,) = root.checkpoint.stage.datasets
    assert (root.checkpoint.stage.name, read.name, read.md5) == ("bootstrap", "tiny-noisy-capfilt", md5)
    (writer,) = read.produced_by
    assert writer.name == "capfilt" and writer.parent_checkpoints["*"].stage.name == "noisy"
    assert [d.name for d in writer.datasets] == ["tiny-noisy"]
    assert [s.name for s in fed.stages] == ["noisy", "capfilt", "bootstrap"]
    assert [(m.name, m.version) for m in fed.model_versions] == [("tiny-blip-capfilt", "1")]


def test_a_capfilt_stage_that_keeps_nothing_fails_before_writing_a_dataset_or_a_model(tmp_path: Path):
    recipe = yaml.safe_load((HERE / "tiny_blip_capfilt.yaml").read_text())
    recipe["base"] = str(HERE / recipe["base"])
    recipe["stages"][1]["capfilt"]["threshold"] = 1.0  # an untrained head is never that sure
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(recipe))
    work = tmp_path / "work"
    failed = mmops("run", str(path), "--workdir", str(work), status=2)
    assert "kept no caption" in failed.stderr and "capfilt.threshold 1.0" in failed.stderr
    assert not (work / "datasets" / "data" / "tiny-noisy-capfilt").exists()
    client = client_for(Settings.for_workdir(work, env={}))
    assert client.search_model_versions("name='tiny-blip-capfilt'") == []


def test_kosmos1_splices_every_image_of_a_document_between_its_boundaries_and_is_evaluated_few_shot(tmp_path: Path):
    run = run_family("tiny_kosmos1.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "lm", "interleaved"]
    interleaved = run.client.get_run(run.stage_runs["interleaved"]).data.params
    assert interleaved["objective"] == "llava_interleaved" and interleaved["trainable"] == "connector,image_boundaries,language_model"

    clip, lm, kosmos = (run.stage_weights(s) for s in ("clip", "lm", "interleaved"))
    for name, tensor in kosmos.items():
        if name.startswith("vision."):  # the tower frozen, bit for bit
            assert torch.equal(tensor, clip[name]), name
    assert any(not torch.equal(kosmos[n], lm[n]) for n in lm if n.startswith("language_model."))  # the LM trained
    assert {"image_boundaries.begin", "image_boundaries.end"} <= kosmos.keys()

    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"vqa_exact_match", "vqa_exact_match_0shot"} <= metrics.keys()
    image = next((run.work / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    answers = run.answer(image)  # served: one image, spliced between its boundaries
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_vila_blends_text_into_its_sft_and_measures_what_its_lm_kept_of_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = run_family("tiny_vila.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "lm", "align", "interleaved", "sft"]
    assert run.client.get_run(run.stage_runs["sft"]).data.params["text_only_mix"] == "0.5"
    assert run.client.get_run(run.stage_runs["interleaved"]).data.params["trainable"] == "connector,language_model"

    metrics = run.client.get_run(run.version.run_id).data.metrics
    ours, reference = metrics["text_only_exact_match"], metrics["text_only_exact_match_reference"]
    assert metrics["text_only_degradation"] == pytest.approx(reference - ours)
    assert ("text_only_retained" in metrics) == (reference > 0)
    assert metrics["text_only_items"] == metrics["vqa_items"]  # every test question, asked both ways
    lm, sft = run.stage_weights("lm"), run.stage_weights("sft")
    assert any(not torch.equal(sft[n], lm[n]) for n in lm)  # the reference is another LM than the output's
    page = open_app(monkeypatch, run.work, DEFAULT_PAGE)  # the Models page charts the text-only figures
    assert "Text-only answers, v1" in [h.value for h in page.subheader]


def test_dress_writes_critic_feedback_as_a_dataset_version_trains_on_it_and_is_evaluated_turn_by_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = run_family("tiny_dress.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "lm", "align", "instruct", "feedback", "dress"]
    feedback_run = run.client.get_run(run.stage_runs["feedback"])
    written = feedback_run.data.tags["mmops.dataset_written"]
    assert written.startswith("tiny-shapes-feedback@") and run.version.tags["mmops.datasets_written"] == written
    assert feedback_run.data.metrics["samples_written"] == feedback_run.data.metrics["answered"] > 0

    # the dataset version holds the original conversations and one feedback sample per question answered
    data = run.work / "datasets" / "data" / "tiny-shapes-feedback"
    samples = json.loads((data / "instruct_train.json").read_text())
    originals = json.loads((run.work / "datasets" / "data" / "tiny-shapes" / "instruct_train.json").read_text())
    feedback = [s for s in samples if "context_turns" in s]
    assert samples[: len(originals)] == originals and len(feedback) == feedback_run.data.metrics["answered"]
    assert all(s["conversations"][-2]["value"].startswith("Score: ") for s in feedback)
    report = json.loads((data / "feedback.json").read_text())
    assert report["model"] == "instruct" and report["samples"] == len(samples)

    metrics = run.client.get_run(run.version.run_id).data.metrics
    for r in range(3):  # round 0 and two rounds of feedback, for the output and the SFT model before it
        assert {f"feedback_em_round{r}", f"feedback_em_round{r}_reference"} <= metrics.keys()
    assert metrics["feedback_em_round0"] == metrics["vqa_exact_match"]  # round 0 is the ordinary answer
    assert metrics["feedback_gain"] == pytest.approx(metrics["feedback_em_round2"] - metrics["feedback_em_round0"])
    local = Path(run.client.download_artifacts(run.version.run_id, "evaluation/feedback_test.json", str(tmp_path)))
    exchanges = json.loads(local.read_text())
    assert len(exchanges) == metrics["vqa_items"] + metrics["grounding_items"] and len(exchanges[0]["rounds"]) == 3
    page = open_app(monkeypatch, run.work, DEFAULT_PAGE)  # the Models page charts the rounds
    assert "Answers after feedback, v1" in [h.value for h in page.subheader]


def test_kosmos2_trains_on_location_tokens_and_scores_its_grounded_captions(tmp_path: Path):
    run = run_family("tiny_kosmos2.yaml", tmp_path / "work")
    assert run.client.get_run(run.stage_runs["grounded"]).data.params["location_tokens"] == "True"
    tokenizer = json.loads((run.work / "datasets" / "data" / "tiny-shapes-grounded" / "tokenizer.json").read_text())
    added = {t["content"] for t in tokenizer["added_tokens"]}
    assert {"<grounding>", "<phrase>", "</object>", "<patch_index_0000>", "<patch_index_0063>"} <= added  # an 8 x 8 grid

    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"grounded_recall", "grounded_precision", "grounded_phrase_recall", "grounding_iou50"} <= metrics.keys()
    assert metrics["grounded_items"] == 6  # evaluation.limit test captions
    local = Path(run.client.download_artifacts(run.version.run_id, "evaluation/grounded_captions_test.json", str(tmp_path)))
    assert len(json.loads(local.read_text())) == 6


def test_uni_perceiver_samples_its_tasks_through_one_encoder_and_is_served_as_an_embedder(tmp_path: Path):
    run = run_family("tiny_uni_perceiver.yaml", tmp_path / "work")
    stage = run.client.get_run(run.stage_runs["multitask"])
    assert json.loads(stage.data.params["tasks"]) == {"captioning": 1.0, "classification": 1.0, "mlm": 1.0, "retrieval": 1.0}
    drawn = {key for key in stage.data.metrics if key.startswith("train/") and key.endswith("_loss")}
    assert drawn and drawn <= {"train/retrieval_loss", "train/mlm_loss", "train/captioning_loss", "train/classification_loss"}
    weights = run.stage_weights("multitask")
    assert {"spe", "type_embed.weight", "frame_positions", "blocks.0.attn.qkv.weight"} <= weights.keys()
    assert not any(k.startswith(("vision.", "text.")) for k in weights)  # no separate towers: one shared encoder

    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"zero_shot_accuracy", "i2t_r1", "t2i_r1"} <= metrics.keys()
    image = next((run.work / "datasets" / "data" / "tiny-shapes" / "images" / "test").glob("*.png"))
    with tracking(run.settings):
        served = mlflow.pyfunc.load_model("models:/tiny-uni-perceiver@production")
        out = served.predict(pd.DataFrame({"image": [str(image)], "text": ["a red circle"], "candidates": [None]}))
    assert torch.tensor(out.loc[0, "image_embedding"]).norm().item() == pytest.approx(1.0, abs=1e-4)


def test_kosmos25_reads_its_pages_into_located_text_blocks_and_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = run_family("tiny_kosmos25.yaml", tmp_path / "work")
    assert {run.client.get_run(run.stage_runs[s]).data.params["corpus"] for s in ("clip", "lm", "read")} == {"pages"}
    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"ocr_word_f1", "ocr_block_f1", "md_exact_match", "md_ned_score", "md_line_f1"} <= metrics.keys()
    assert "vqa_exact_match" not in metrics and metrics["md_items"] == 3  # evaluation.limit pages, no scene questions
    local = Path(run.client.download_artifacts(run.version.run_id, "evaluation/predictions_test.json", str(tmp_path)))
    assert sorted(p["task"] for p in json.loads(local.read_text())) == ["md"] * 3 + ["ocr"] * 3
    page = next((run.work / "datasets" / "data" / "tiny-shapes-pages" / "pages" / "test").glob("*.png"))
    answers = run.answer(page, "<ocr>")
    assert len(answers) == 1 and isinstance(answers[0], str)
    models_page = open_app(monkeypatch, run.work, DEFAULT_PAGE)  # the Models page charts the reading figures
    assert "Reading text pages, v1" in [h.value for h in models_page.subheader]


def test_ofa_answers_every_instruction_from_one_encoder_decoder_over_one_vocabulary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = run_family("tiny_ofa.yaml", tmp_path / "work")
    assert list(run.stage_runs) == ["clip", "vq", "ofa"]
    assert json.loads(run.client.get_run(run.stage_runs["ofa"]).data.params["tasks"])["vqa"] == 2.0
    vq, ofa = run.stage_weights("vq"), run.stage_weights("ofa")
    for name, tensor in vq.items():  # the image tokenizer is copied in and stays frozen
        assert torch.equal(ofa[name], tensor), name
    tokenizer = json.loads((run.work / "datasets" / "data" / "tiny-shapes-ofa" / "tokenizer.json").read_text())
    text_vocab = len(tokenizer["model"]["vocab"]) + sum(t["id"] >= len(tokenizer["model"]["vocab"]) for t in tokenizer["added_tokens"])
    assert {"<bin_000>", "<bin_015>"} <= {t["content"] for t in tokenizer["added_tokens"]}
    assert ofa["token_embed.weight"].shape[0] == text_vocab + 16  # text, location bins, then the 16 image codes

    metrics = run.client.get_run(run.version.run_id).data.metrics
    assert {"vqa_exact_match", "grounding_iou50", "caption_exact_match", "infill_code_accuracy", "infill_mse", "infill_mse_tokenizer"} <= metrics.keys()
    local = Path(run.client.download_artifacts(run.version.run_id, "evaluation/infilling_test.png", str(tmp_path)))
    from PIL import Image

    assert Image.open(local).size == (4 * 32, 6 * 32)  # image, masked, tokenizer, infilled; one row per test image
    image = next((run.work / "datasets" / "data" / "tiny-shapes-ofa" / "images" / "test").glob("*.png"))
    answers = run.answer(image)
    assert len(answers) == 1 and isinstance(answers[0], str)
    models_page = open_app(monkeypatch, run.work, DEFAULT_PAGE)
    assert "Instruction tasks, v1" in [h.value for h in models_page.subheader]
