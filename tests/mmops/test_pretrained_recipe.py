"""recipes/llava15_hf.yaml and the recipe fields of pretrained towers: valid once its directories
exist, refused before anything runs (naming the field) while they do not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmops.cli import main
from mmops.errors import RecipeError
from mmops.recipe import DataConfig, load_recipe

ROOT = Path(__file__).resolve().parents[2]
HF_RECIPE = ROOT / "recipes" / "llava15_hf.yaml"


def extending(tmp_path: Path, overrides: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"base": str(HF_RECIPE), **overrides}))
    return path


def pointed_at(dirs: dict[str, Path], vision: str = "clip", lm: str = "llama") -> dict:
    return {
        "data": {"tokenizer": {"pretrained": str(dirs[lm])}},
        "model": {"vision": {"pretrained": str(dirs[vision])}, "language_model": {"pretrained": str(dirs[lm])}},
    }


def test_llava15_hf_without_its_model_directories_is_refused_naming_each_field(capsys: pytest.CaptureFixture[str]):
    assert main(["validate", str(HF_RECIPE)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "invalid recipe (3 errors)" in err
    for field, folder in [("data.tokenizer.pretrained", "vicuna-7b-v1.5"), ("model.vision.pretrained", "clip-vit-large-patch14-336"),
                          ("model.language_model.pretrained", "vicuna-7b-v1.5")]:
        assert f"  {field}: {Path.cwd() / 'models' / folder} does not exist" in err


def test_llava15_hf_pointed_at_local_models_takes_their_sizes_and_keeps_llava15_s_stages(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    recipe = load_recipe(extending(tmp_path, pointed_at(tiny_hf_dirs, "siglip", "qwen2"))).recipe
    assert (recipe.model.vision.image_size, recipe.model.vision.dim, recipe.model.language_model.dim) == (32, 32, 32)
    assert recipe.model.connector == "mlp2x_gelu" and recipe.model.vision_feature_layer == -2
    assert [(s.name, s.trainable) for s in recipe.stages] == [("align", ["connector"]), ("instruct", ["connector", "language_model"])]
    assert recipe.data.tokenizer.pretrained == tiny_hf_dirs["qwen2"]


def test_a_pretrained_lm_needs_its_own_tokenizer(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    path = tmp_path / "lm_only.yaml"
    path.write_text(yaml.safe_dump({
        "name": "lm-only", "family": "llava-1.5",
        "model": {"language_model": {"pretrained": str(tiny_hf_dirs["llama"])}},
        "stages": [{"name": "instruct", "objective": "llava_instruct", "trainable": ["connector"]}],
    }))
    with pytest.raises(RecipeError, match=r"model\.language_model\.pretrained reads token ids with its own vocabulary: set data\.tokenizer\.pretrained"):
        load_recipe(path)


def test_a_pretrained_tokenizer_takes_no_vocab_size_and_its_pin_must_match(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    overrides = pointed_at(tiny_hf_dirs)
    overrides["data"]["tokenizer"]["vocab_size"] = 512
    with pytest.raises(RecipeError, match=r"data\.tokenizer: vocab_size sizes a tokenizer trained on the data; .*leave vocab_size out"):
        load_recipe(extending(tmp_path, overrides))
    with pytest.raises(ValueError, match=r"sha256 0+ is not that of .*tokenizer\.json"):
        DataConfig(tokenizer={"pretrained": tiny_hf_dirs["llama"], "sha256": "0" * 64})
    with pytest.raises(ValueError, match="without pretrained there is none"):
        DataConfig(tokenizer={"sha256": "0" * 64})


def test_pickled_weights_are_refused(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    pickled = tmp_path / "clip-bin"
    pickled.mkdir()
    (pickled / "config.json").write_bytes((tiny_hf_dirs["clip"] / "config.json").read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    overrides = pointed_at(tiny_hf_dirs)
    overrides["model"]["vision"]["pretrained"] = str(pickled)
    with pytest.raises(RecipeError, match=rf"model\.vision\.pretrained: {pickled} has no \*\.safetensors weights \(pickled \.bin weights are refused\)"):
        load_recipe(extending(tmp_path, overrides))


def test_region_words_train_our_own_tower_only(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    path = tmp_path / "clip_hf.yaml"
    path.write_text(yaml.safe_dump({
        "name": "clip-hf", "family": "llava",
        "model": {"vision": {"pretrained": str(tiny_hf_dirs["clip"])}},
        "stages": [
            {"name": "clip", "objective": "contrastive", "trainable": ["vision"], "region_weight": 1.0},
            {"name": "instruct", "objective": "llava_instruct", "init": {"vision": "clip"}, "trainable": ["connector"]},
        ],
    }))
    with pytest.raises(RecipeError, match=r"stages\.0\.region_weight: region-word alignment trains mmops' own vision tower.*\(allowed: 0\)"):
        load_recipe(path)
