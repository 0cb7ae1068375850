"""Recipes are validated before any compute or write; errors name the file, the field and what is allowed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmops.cli import main
from mmops.errors import RecipeError
from components.training.objectives import OUTPUT_OBJECTIVES
from mmops.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
NEEDS_LOCAL_MODELS = {"llava15_hf.yaml"}  # valid once its pretrained directories exist: tests/mmops/test_pretrained_recipe.py
SHIPPED = sorted(p for p in (ROOT / "recipes").glob("*.yaml") if p.name not in NEEDS_LOCAL_MODELS)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path: Path):
    loaded = load_recipe(path)
    assert loaded.recipe.final_stage.objective in OUTPUT_OBJECTIVES
    assert len(loaded.sha256) == 64


def test_llava15_is_llava_with_the_mlp_connector():
    a, b = load_recipe(ROOT / "recipes/llava.yaml"), load_recipe(ROOT / "recipes/llava15.yaml")
    assert a.recipe.model.connector == "linear" and b.recipe.model.connector == "mlp2x_gelu"
    assert b.recipe.model.model_copy(update={"connector": "linear"}) == a.recipe.model
    assert b.recipe.stages == a.recipe.stages and b.recipe.data == a.recipe.data
    assert b.recipe.promotion == a.recipe.promotion and b.recipe.name == "shapes-llava15"
    assert b.text.startswith("# merged from") and "connector: mlp2x_gelu" in b.text


def write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def test_base_merges_mappings_and_replaces_lists(tmp_path: Path):
    base = yaml.safe_load((ROOT / "recipes/llava.yaml").read_text())
    write(tmp_path / "base.yaml", base)
    stages = [stage | {"steps": 7} for stage in base["stages"]]
    write(tmp_path / "child.yaml", {"base": "base.yaml", "name": "child", "model": {"language_model": {"depth": 2}}, "stages": stages})
    loaded = load_recipe(tmp_path / "child.yaml")
    lm, base_lm = loaded.recipe.model.language_model, base["model"]["language_model"]
    assert (lm.depth, lm.dim, lm.heads) == (2, base_lm["dim"], base_lm["heads"])  # merged key by key
    assert loaded.recipe.model.connector == base["model"]["connector"]
    assert [s.steps for s in loaded.recipe.stages] == [7] * len(base["stages"])  # a list is replaced whole
    assert loaded.recipe.name == "child" and loaded.recipe.family == base["family"]


def test_null_in_an_extending_recipe_takes_a_key_out_of_the_base(tmp_path: Path):
    base = yaml.safe_load((ROOT / "recipes/llava.yaml").read_text())
    write(tmp_path / "base.yaml", base)
    write(tmp_path / "child.yaml", {"base": "base.yaml", "name": "child", "promotion": {"thresholds": {"vqa_exact_match": None, "vqa_em_colour": 0.5}}})
    assert load_recipe(tmp_path / "child.yaml").recipe.promotion.thresholds == {"vqa_em_colour": 0.5}


def test_base_changes_the_hash_of_recipes_that_extend_it(tmp_path: Path):
    base = yaml.safe_load((ROOT / "recipes/llava.yaml").read_text())
    write(tmp_path / "base.yaml", base)
    write(tmp_path / "child.yaml", {"base": "base.yaml", "name": "child"})
    before = load_recipe(tmp_path / "child.yaml").sha256
    write(tmp_path / "base.yaml", base | {"description": "changed"})
    assert load_recipe(tmp_path / "child.yaml").sha256 != before


BASE_ERRORS = {
    "missing base": ({"base": "nowhere.yaml", "name": "child"}, r"nowhere\.yaml: recipe file not found \(the base of .*child\.yaml\)"),
    "base not a name": ({"base": 3, "name": "child"}, r"child\.yaml: field base: 3 is not a file name"),
    "cycle": ({"base": "child.yaml", "name": "child"}, r"child\.yaml: field base: recipes extend each other in a cycle"),
    "field error names both files": ({"base": "base.yaml", "model": {"connector": "perceiver"}},
                                     r"child\.yaml \(extending .*base\.yaml\): invalid recipe.*model\.connector"),
}


@pytest.mark.parametrize("case", BASE_ERRORS, ids=list(BASE_ERRORS))
def test_bad_base_is_a_clear_error(case, tmp_path: Path):
    write(tmp_path / "base.yaml", yaml.safe_load((ROOT / "recipes/llava.yaml").read_text()))
    raw, pattern = BASE_ERRORS[case]
    with pytest.raises(RecipeError, match=re.compile(pattern, re.S)):
        load_recipe(write(tmp_path / "child.yaml", raw))


def broken(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((ROOT / "recipes/llava.yaml").read_text())
    mutate(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


CASES = {
    "unknown key": (lambda r: r["model"].update(conector="linear"), r"model\.conector: unknown field \(allowed: .*connector"),
    "wrong type": (lambda r: r["stages"][0].update(steps="many"), r"stages\.0\.steps: .*integer"),
    "missing parent": (lambda r: r["stages"][2]["init"].update(vision="clipp"), r"takes weights from 'clipp'.*earlier stages: clip, lm"),
    "unknown connector": (lambda r: r["model"].update(connector="perceiver"), r"model\.connector: .*'linear', 'mlp2x_gelu', 'swiglu_adapter', 'qformer' or 'resampler'"),
    "unknown trainable group": (lambda r: r["stages"][3].update(trainable=["projector"]), r"'projector' is not a part.*allowed: vision, connector, language_model"),
    "bad model uri": (lambda r: r["stages"][2]["init"].update(vision="models:/clip"), r"not a model URI"),
    "unknown colour": (lambda r: r["data"]["shapes"].update(colours=["red", "mauve"]), r"mauve"),
    "answer weighting without tokens": (lambda r: r["stages"][0].update(loss_weighting="answer"), r"stages\.0.*contrastive objective has none \(allowed there: token\)"),
    "region words outside a contrastive stage": (lambda r: r["stages"][3].update(region_weight=1.0),
                                                 r"stages\.3.*region_weight aligns .* the llava_\w+ objective has none \(allowed for: contrastive\)"),
    "text corpus outside a language-model stage": (lambda r: r["stages"][2].update(text_corpus="described"),
                                                   r"stages\.2.*text_corpus chooses .* the llava_pretrain objective reads none \(allowed for: language_modeling\)"),
    "unknown text corpus": (lambda r: r["stages"][1].update(text_corpus="books"), r"stages\.1\.text_corpus: .*'turns' or 'described'"),
    "negative region weight": (lambda r: r["stages"][0].update(region_weight=-1), r"stages\.0\.region_weight: .*greater than or equal to 0"),
    "unknown loss weighting": (lambda r: r["stages"][3].update(loss_weighting="turn"), r"stages\.3\.loss_weighting: .*'token' or 'answer'"),
    "lr scale of a frozen part": (lambda r: r["stages"][2]["optimizer"].update(lr_scale={"language_model": 0.1}),
                                  r"stages\.2.*lr_scale part 'language_model' does not train in this stage \(trainable: connector\)"),
    "weight average that never moves": (lambda r: r["stages"][3]["optimizer"].update(ema_decay=1.0), r"stages\.3\.optimizer\.ema_decay: .*less than 1"),
    "visual expert without the model flag": (lambda r: r["stages"][3].update(trainable=["connector", "visual_expert"]),
                                             r"stage 'instruct' names the part visual_expert, but model\.visual_expert is not true"),
    "few-shot evaluation of an any-resolution model": (lambda r: (r["model"].update(anyres_pinpoints=[[64, 128]]), r["evaluation"].update(few_shot=2)),
                                                       r"evaluation\.few_shot needs a model that reads several images.*with anyres_pinpoints \(allowed: 0\)"),
    "interleaved images in an any-resolution model": (lambda r: (r["model"].update(anyres_pinpoints=[[64, 128]]), r["stages"][3].update(objective="llava_interleaved", group_by_length=False)),
                                                      r"stage 'instruct' splices several images .* \(allowed there: no anyres_pinpoints\)"),
    "max images outside an interleaved stage": (lambda r: r["stages"][3].update(max_images=4),
                                                r"stages\.3.*max_images is for the llava_interleaved objective's sequences; the llava_multitask objective has none"),
    "image boundaries without the model flag": (lambda r: r["stages"][3].update(trainable=["connector", "image_boundaries"]),
                                                r"stage 'instruct' names the part image_boundaries, but model\.image_boundaries is not true"),
    "text-only mix outside a conversation stage": (lambda r: r["stages"][0].update(text_only_mix=0.2),
                                                   r"stages\.0.*text_only_mix mixes text .* the contrastive objective has none \(allowed for: llava_instruct"),
    "text-only mix of everything": (lambda r: r["stages"][3].update(text_only_mix=1.0), r"stages\.3\.text_only_mix: .*less than 1"),
    "text-only mix in an any-resolution model": (lambda r: (r["model"].update(anyres_pinpoints=[[64, 128]]), r["stages"][3].update(text_only_mix=0.2)),
                                                 r"stage 'instruct' mixes in text-only items .* \(allowed there: text_only_mix 0\)"),
    "text-only reference that is not a stage": (lambda r: r["evaluation"].update(text_only_reference="text"),
                                                r"evaluation\.text_only_reference 'text' is not a training stage with a language model \(allowed: lm, align, instruct\)"),
    "text-only reference without a language model": (lambda r: r["evaluation"].update(text_only_reference="clip"),
                                                     r"'clip' is not a training stage with a language model"),
    "a gate on text-only answers nobody asks": (lambda r: r["promotion"].update(thresholds={"text_only_retained": 0.9}),
                                                r"promotion gates on 'text_only_retained', which only evaluation\.text_only_reference makes the evaluation log"),
    "location tokens outside a LLaVA-style stage": (lambda r: r["stages"][1].update(location_tokens=True),
                                                    r"stages\.1.*location_tokens ground .* the language_modeling objective has none"),
    "location tokens without them in the tokenizer": (lambda r: r["stages"][3].update(location_tokens=True),
                                                      r"stage 'instruct' writes location tokens, but data\.tokenizer\.location_bins is not set"),
    "a location grid too fine": (lambda r: r["data"]["tokenizer"].update(location_bins=100), r"data\.tokenizer\.location_bins: .*less than or equal to 64"),
    "a gate on grounded captions nobody writes": (lambda r: r["promotion"].update(thresholds={"grounded_recall": 0.5}),
                                                  r"promotion gates on 'grounded_recall', which only an output stage with location_tokens makes the evaluation log"),
    "task weights outside Uni-Perceiver": (lambda r: r["stages"][0].update(tasks={"mlm": 1.0}),
                                           r"stages\.0.*tasks weigh Uni-Perceiver's or OFA's tasks; the contrastive objective has one loss"),
    "caption negatives outside BLIP": (lambda r: r["stages"][0].update(caption_negatives=True),
                                       r"stages\.0.*caption_negatives add the captions' negatives to BLIP's ITC; the contrastive objective has none"),
    "an unknown Uni-Perceiver task": (lambda r: r["stages"][0].update(objective="uni_perceiver", trainable=["blocks"], region_weight=0, tasks={"detection": 1.0}),
                                      r"stages\.0.*tasks: detection is not a task of the uni_perceiver objective \(allowed: retrieval, mlm, captioning, classification\)"),
    "an OFA task for Uni-Perceiver": (lambda r: r["stages"][0].update(objective="uni_perceiver", trainable=["blocks"], region_weight=0, tasks={"infilling": 1.0}),
                                      r"tasks: infilling is not a task of the uni_perceiver objective"),
    "pages without pages in the data": (lambda r: r["stages"][0].update(corpus="pages"), r"stage 'clip' reads corpus 'pages', but data\.pages is not set"),
    "pages in an interleaved stage": (lambda r: r["stages"][3].update(corpus="pages", objective="llava_interleaved", group_by_length=False),
                                      r"stages\.3.*corpus 'pages' is read by .* the llava_interleaved objective reads scenes only"),
    "pages mixed with scene text": (lambda r: r["stages"][3].update(corpus="pages", text_only_mix=0.2), r"corpus 'pages' has no captions of scenes to mix in"),
    "a gate on reading for a scene model": (lambda r: r["promotion"].update(thresholds={"ocr_word_f1": 0.5}),
                                            r"promotion gates on 'ocr_word_f1', which only an output stage with corpus 'pages' makes the evaluation log"),
    "a page reader gated on scene questions": (lambda r: (r["data"].update(pages={"train": 10}), r["stages"][3].update(corpus="pages")),
                                               r"promotion gates on 'vqa_exact_match', which a page reader does not log: .*allowed: ocr_word_precision"),
    "a page reader asked few-shot": (lambda r: (r["data"].update(pages={"train": 10}), r["stages"][3].update(corpus="pages"),
                                                r["promotion"].update(thresholds={"ocr_word_f1": 0.5}, not_worse_than_production=[]), r["evaluation"].update(few_shot=2)),
                                     r"a page reader is evaluated on its pages' text blocks and markdown; evaluation\.few_shot"),
    "an OFA stage without its config": (lambda r: r["stages"][3].update(objective="ofa_instruct", trainable=["encoder"], group_by_length=False, init={}),
                                        r"stage 'instruct' trains OFA \(ofa_instruct\), but model\.ofa .* is not set"),
    "an OFA stage without coordinate bins": (lambda r: (r["model"].update(ofa={"dim": 64}, vq={}), r["stages"][3].update(objective="ofa_instruct", trainable=["encoder"], group_by_length=False, init={})),
                                             r"writes boxes as coordinate bins, but data\.tokenizer\.coordinate_bins is not set"),
    "OFA infilling without an image tokenizer": (lambda r: (r["model"].update(ofa={"dim": 64}), r["data"]["tokenizer"].update(coordinate_bins=32),
                                                            r["stages"][3].update(objective="ofa_instruct", trainable=["encoder"], group_by_length=False, init={}, tasks={"infilling": 1})),
                                                 r"trains OFA's image infilling, whose answers are image codes, but model\.vq is not set"),
    "an image tokenizer without its config": (lambda r: r["stages"][1].update(objective="vq_tokenizer", trainable=["image_tokenizer"]),
                                              r"stage 'lm' trains an image tokenizer \(vq_tokenizer\), but model\.vq .* is not set"),
    "two ways to write a box": (lambda r: r["data"]["tokenizer"].update(coordinate_bins=32, location_bins=8), r"location_bins .* and coordinate_bins .* choose one"),
    "a gate on infilling for a LLaVA model": (lambda r: r["promotion"].update(thresholds={"infill_code_accuracy": 0.5}),
                                              r"promotion gates on 'infill_code_accuracy', which only an OFA output stage"),
    "a Uni-Perceiver stage without its config": (lambda r: r["stages"][0].update(objective="uni_perceiver", trainable=["blocks"], region_weight=0),
                                                 r"stage 'clip' trains Uni-Perceiver, but model\.uni_perceiver .* is not set"),
    "length grouping of interleaved sequences": (lambda r: r["stages"][3].update(objective="llava_interleaved"),
                                                 r"stages\.3.*group_by_length groups conversations; the llava_interleaved objective has none"),
    "flamingo stage without its config": (lambda r: r["stages"][3].update(objective="flamingo_interleaved", trainable=["gated_cross_attention"], group_by_length=False),
                                          r"stage 'instruct' trains a Flamingo model, but model\.flamingo is not set"),
    "flamingo part in a llava stage": (lambda r: r["stages"][3].update(trainable=["gated_cross_attention"]),
                                       r"'gated_cross_attention' is not a part of the llava_\w+ model"),
    "length grouping of captions": (lambda r: r["stages"][0].update(group_by_length=True),
                                    r"stages\.0.*contrastive objective has none \(allowed for: llava_instruct, llava_multitask, llava_pretrain\)"),
    "a gate on a metric the evaluation does not log": (lambda r: r["promotion"].update(thresholds={"vqa_accuracy": 0.5}),
                                                      r"promotion\.thresholds: 'vqa_accuracy' is not a metric the evaluation of a "
                                                      r"llava_multitask model logs \(allowed: vqa_exact_match, vqa_em_<question type>"),
    "a gate on retrieval for a model that answers": (lambda r: r["promotion"].update(not_worse_than_production=["i2t_r1"]),
                                                     r"promotion\.not_worse_than_production: 'i2t_r1' is not a metric"),
    "label prompts outside a contrastive stage": (lambda r: r["stages"][1].update(label_prompts=0.5),
                                                  r"stages\.1.*label_prompts are image-label texts .* the language_modeling objective has none \(allowed for: contrastive, uni_perceiver\)"),
    "label prompts above one": (lambda r: r["stages"][0].update(label_prompts=1.5), r"stages\.0\.label_prompts: .*less than or equal to 1"),
    "blip stage without its config": (lambda r: r["stages"][0].update(objective="blip_pretrain", trainable=["text"], region_weight=0),
                                      r"stage 'clip' trains BLIP \(blip_pretrain\), but model\.blip .* is not set"),
    "an output stage nothing can evaluate": (lambda r: r.update(output_stage="lm"),
                                             r"output stage 'lm' must produce a model the pipeline can evaluate and serve "
                                             r"\(blip_pretrain, contrastive, diffusion, flamingo_interleaved, llava_instruct, .*\), not language_modeling"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_broken_recipe_error_names_file_field_and_allowed(case, tmp_path: Path):
    mutate, pattern = CASES[case]
    path = broken(tmp_path, mutate)
    with pytest.raises(RecipeError, match=pattern) as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_not_a_mapping_and_bad_yaml(tmp_path: Path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(tmp_path / "list.yaml")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_cli_run_of_broken_recipe_exits_2_and_writes_nothing(tmp_path: Path, capsys):
    path = broken(tmp_path, lambda r: r["model"].update(connector="perceiver"))
    workdir = tmp_path / "work"
    assert main(["run", str(path), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.connector" in err and "Traceback" not in err
    assert not workdir.exists()


def test_cli_validate_reports_each_recipe(tmp_path: Path):
    path = broken(tmp_path, lambda r: r.pop("stages"))
    result = subprocess.run(
        [sys.executable, "-m", "mmops", "validate", str(ROOT / "recipes/llava.yaml"), str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "ok: " in result.stdout and "llava.yaml" in result.stdout
    assert f"{path}: invalid recipe" in result.stderr and "stages: Field required" in result.stderr
    assert "Traceback" not in result.stderr


def test_names_are_checked_everywhere(tmp_path: Path):
    for mutate, field in [
        (lambda r: r.update(name="Shapes LLaVA"), "name"),
        (lambda r: r["data"].update(name="../escape"), "data.name"),
        (lambda r: r["stages"][0].update(name="CLIP!"), "stages.0.name"),
    ]:
        with pytest.raises(RecipeError, match=rf"{field}: name .* must match"):
            load_recipe(broken(tmp_path, mutate))


def test_qformer_stage_without_a_qformer_is_refused(tmp_path):
    raw = yaml.safe_load((ROOT / "recipes/llava.yaml").read_text())
    raw["stages"].insert(1, {"name": "qformer", "objective": "qformer_pretrain", "init": {"vision": "clip"},
                             "trainable": ["qformer", "image_projection", "text_projection", "itm_head", "lm_head", "logit_scale"]})
    path = tmp_path / "blip2.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match=r"(?s)blip2\.yaml.*stage 'qformer' trains a Q-Former \(qformer_pretrain\), but model\.qformer is not set"):
        load_recipe(path)
    raw["model"]["qformer"] = {"num_queries": 8, "dim": 32, "depth": 2, "heads": 2}
    path.write_text(yaml.safe_dump(raw))
    assert load_recipe(path).recipe.stage("qformer").objective == "qformer_pretrain"


def capfilt_recipe(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((ROOT / "recipes/blip_capfilt.yaml").read_text())
    raw["base"] = str(ROOT / "recipes/blip.yaml")
    change(raw)
    return write(tmp_path / "capfilt.yaml", raw)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda r: r["stages"][2].update(data="noisy"), r"stage 'bootstrap' reads data from 'noisy', which is not an earlier data stage \(earlier data stages: capfilt\)"),
        (lambda r: r["stages"][2].update(data="later"), r"reads data from 'later', which is not an earlier data stage"),
        (lambda r: r["stages"][1].update(model="bootstrap"), r"stage 'capfilt' takes weights from 'bootstrap', which is not an earlier stage"),
        (lambda r: r["stages"][2].update(init={"*": "capfilt"}), r"takes weights from 'capfilt', a data stage, which writes a dataset and no weights"),
        (lambda r: r["stages"][1].update(model="models:/bad name"), r"stages\.1\.model: .*not a model URI"),
        (lambda r: r["stages"][1]["capfilt"].update(threshold=1.5), r"stages\.1\.capfilt\.threshold: .*less than or equal to 1"),
        (lambda r: r["stages"][1].update(dataset="shapes-noisy"), r"dataset name 'shapes-noisy' is written twice"),
        (lambda r: r["stages"][1].update(name="c" * 60) or r["stages"][2].update(data="c" * 60), r"writes 'shapes-noisy-c+', which is not a name .*set its dataset"),
        (lambda r: r["stages"][1].update(steps=10), r"stages\.1\.steps: unknown field \(allowed: capfilt, data, dataset, model, name, objective\)"),
        (lambda r: r.update(output_stage="capfilt"), r"output stage 'capfilt' must produce a model .* not capfilt"),
        (lambda r: r["stages"].insert(0, {"name": "clip", "objective": "contrastive", "trainable": ["vision"]})
         or r["stages"][2].update(model="clip"), r"model 'clip' is a contrastive stage; capfilt runs the model of a blip_pretrain stage"),
    ],
)
def test_data_stages_are_checked_before_anything_runs(tmp_path: Path, change, error: str):
    with pytest.raises(RecipeError, match=rf"(?s)capfilt\.yaml.*{error}"):
        load_recipe(capfilt_recipe(tmp_path, change))


def test_a_capfilt_recipe_names_the_dataset_it_writes(tmp_path: Path):
    recipe = load_recipe(ROOT / "recipes/blip_capfilt.yaml").recipe
    (capfilt,) = recipe.data_stages
    assert recipe.dataset_name(capfilt) == "shapes-noisy-capfilt" and recipe.stage("bootstrap").data == "capfilt"
    assert [s.name for s in recipe.training_stages] == ["noisy", "bootstrap"] and recipe.final_stage.name == "bootstrap"
    named = load_recipe(capfilt_recipe(tmp_path, lambda r: r["stages"][1].update(dataset="bootstrapped", model="models:/shapes-blip@production")))
    assert named.recipe.dataset_name(named.recipe.data_stages[0]) == "bootstrapped"
    assert named.recipe.parent_models == ["models:/shapes-blip@production"]


def dress_recipe(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((ROOT / "recipes/dress.yaml").read_text())
    raw["base"] = str(ROOT / "recipes/llava.yaml")
    change(raw)
    return write(tmp_path / "dress.yaml", raw)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda r: r["stages"][4].update(model="clip"), r"model 'clip' is a contrastive stage; feedback runs the model of a llava_instruct, llava_interleaved, llava_multitask, llava_pretrain stage"),
        (lambda r: r["stages"][4]["feedback"].update(conversations=0), r"stages\.4\.feedback\.conversations: .*greater than or equal to 1"),
        (lambda r: r["stages"][4].update(capfilt={}), r"stages\.4\.capfilt: unknown field \(allowed: data, dataset, feedback, model, name, objective\)"),
        (lambda r: r["evaluation"].update(feedback_rounds=4), r"evaluation\.feedback_rounds: .*less than or equal to 3"),
        (lambda r: r["evaluation"].update(feedback_rounds=0), r"evaluation\.feedback_reference is evaluated with feedback, but evaluation\.feedback_rounds is 0"),
        (lambda r: r["evaluation"].update(feedback_reference="lm"), r"feedback_reference 'lm' is not another LLaVA-style training stage \(allowed: align, instruct\)"),
        (lambda r: r["evaluation"].update(feedback_reference="dress"), r"feedback_reference 'dress' is not another LLaVA-style training stage"),
        (lambda r: (r["evaluation"].update(feedback_rounds=0, feedback_reference=None), r["promotion"].update(thresholds={"feedback_gain": 0.1})),
         r"promotion gates on 'feedback_gain', which only evaluation\.feedback_rounds > 0 makes the evaluation log"),
    ],
)
def test_feedback_stages_and_evaluation_are_checked_before_anything_runs(tmp_path: Path, change, error: str):
    with pytest.raises(RecipeError, match=rf"(?s)dress\.yaml.*{error}"):
        load_recipe(dress_recipe(tmp_path, change))


def test_a_dress_recipe_gates_on_feedback_figures(tmp_path: Path):
    loaded = load_recipe(dress_recipe(tmp_path, lambda r: r["promotion"].update(thresholds={"feedback_gain": 0.05, "feedback_em_round2": 0.7})))
    recipe = loaded.recipe
    assert [s.name for s in recipe.data_stages] == ["feedback"] and recipe.dataset_name(recipe.stage("feedback")) == "shapes-feedback"
    assert recipe.stage("dress").data == "feedback" and recipe.evaluation.feedback_rounds == 2


def generation_recipe(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((ROOT / "tests/e2e/tiny_t2i_dit.yaml").read_text())
    change(raw)
    return write(tmp_path / "t2i.yaml", raw)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda r: r["data"].pop("videos"), r"stage 'autoencode' trains on videos, but data\.videos is not set"),
        (lambda r: r["model"].pop("video_autoencoder"), r"stage 'autoencode' needs the video compression network: set model\.video_autoencoder"),
        (lambda r: r["model"].pop("diffusion"), r"stage 'denoise' trains a diffusion transformer, but model\.diffusion .* is not set"),
        (lambda r: r["data"]["videos"].update(frames=[1, 4]), r"data\.videos\.frames: 4 frames do not compress by model\.video_autoencoder\.time_downsample=2 \(allowed: 1 \+ k \* 2\)"),
        (lambda r: r["data"]["videos"].update(canvases=[[32, 40]]) or r["model"]["diffusion"]["dit"].update(patch_size=4),
         r"data\.videos\.canvases: 32 x 40 does not cut into 16-pixel patches \(the autoencoder's downsample times the transformer's patch_size"),
        (lambda r: r["model"]["diffusion"]["dit"].update(attention="factorised", depth=3), r"attention 'factorised' alternates space and time blocks, so depth=3 must be even"),
        (lambda r: r["model"]["diffusion"].update(prediction="x0"), r"model\.diffusion\.prediction: .*'epsilon' or 'v'"),
        (lambda r: r["evaluation"]["generation"].update(guidance_scales=[]), r"guidance_scales \[\]: list distinct scales"),
        (lambda r: r["evaluation"]["generation"]["sampling"].update(sampler="euler"), r"sampling\.sampler: .*'ddpm' or 'ddim'"),
        (lambda r: r["promotion"].update(thresholds={"generation_accuracy_g5": 0.5}), r"gates on 'generation_accuracy_g5', but evaluation\.generation\.guidance_scales is \[1\.0, 3\.0\]"),
        (lambda r: r["evaluation"]["generation"].update(guidance_scales=[3.0]) or r["promotion"].update(thresholds={"guidance_gain": 0.0}),
         r"gates on 'guidance_gain', the gain over scale 1"),
        (lambda r: r["promotion"].update(thresholds={"vqa_exact_match": 0.5}), r"'vqa_exact_match' is not a metric the evaluation of a diffusion model logs \(allowed: denoise_loss"),
    ],
)
def test_generation_recipes_are_checked_before_anything_runs(tmp_path: Path, change, error: str):
    with pytest.raises(RecipeError, match=rf"(?s)t2i\.yaml.*{error}"):
        load_recipe(generation_recipe(tmp_path, change))
