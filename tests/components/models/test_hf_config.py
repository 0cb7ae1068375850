"""A pretrained directory sets the tower's recipe fields; what contradicts it, or is missing, is refused
with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from components.models.config import LanguageModelConfig, VisionConfig
from components.models.family import ModelConfig


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple, str]:
    (error,) = exc.value.errors()
    return error["loc"], error["msg"]


def test_a_clip_directory_sets_the_tower_sizes_and_its_pixel_statistics_in_our_pixel_space(tiny_hf_dirs: dict[str, Path]):
    cfg = VisionConfig(pretrained=tiny_hf_dirs["clip"])
    assert (cfg.image_size, cfg.patch_size, cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio) == (32, 8, 32, 3, 2, 2.0)
    assert cfg.num_patches == 16
    # no preprocessor_config.json: CLIP's defaults, for pixels in [-1, 1] instead of [0, 1]
    assert cfg.pixel_mean == pytest.approx([2 * m - 1 for m in OPENAI_CLIP_MEAN])
    assert cfg.pixel_std == pytest.approx([2 * s for s in OPENAI_CLIP_STD])
    whole = VisionConfig(pretrained=tiny_hf_dirs["clip_whole"])  # both CLIP towers: the vision half, its preprocessor's statistics
    assert whole.dim == 32 and whole.pixel_mean == pytest.approx([-0.2, 0.0, 0.2]) and whole.pixel_std == pytest.approx([0.5, 1.0, 1.5])


def test_a_causal_lm_directory_sets_the_lm_sizes_and_max_seq_len_may_only_shrink(tiny_hf_dirs: dict[str, Path]):
    cfg = LanguageModelConfig(pretrained=tiny_hf_dirs["llama"])
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.mlp_hidden, cfg.max_seq_len, cfg.rope_theta) == (32, 2, 4, 64, 512, 10000.0)
    assert LanguageModelConfig(pretrained=tiny_hf_dirs["qwen2"], max_seq_len=128).max_seq_len == 128
    with pytest.raises(ValidationError) as exc:
        LanguageModelConfig(pretrained=tiny_hf_dirs["llama"], max_seq_len=1024)
    assert "max_seq_len=1024 exceeds 512" in only_error(exc)[1]


def test_the_logged_config_validates_again_to_the_same_config(tiny_hf_dirs: dict[str, Path]):
    """The served model re-reads its model_dump: the sizes it carries agree with the directory."""
    cfg = ModelConfig(vision=VisionConfig(pretrained=tiny_hf_dirs["siglip"]), language_model=LanguageModelConfig(pretrained=tiny_hf_dirs["qwen2"]))
    assert ModelConfig.model_validate(json.loads(cfg.model_dump_json())) == cfg


def test_sizes_that_contradict_the_directory_and_own_tower_fields_are_refused(tiny_hf_dirs: dict[str, Path]):
    with pytest.raises(ValidationError) as exc:
        VisionConfig(pretrained=tiny_hf_dirs["clip"], image_size=336)
    assert "image_size=336 differs from 32" in only_error(exc)[1] and "leave it out" in only_error(exc)[1]
    assert VisionConfig(pretrained=tiny_hf_dirs["clip"], image_size=32).image_size == 32  # agreeing is fine
    with pytest.raises(ValidationError) as exc:
        VisionConfig(pretrained=tiny_hf_dirs["clip"], stem="conv")
    assert "stem='conv' applies to mmops' own vision only" in only_error(exc)[1]


def test_a_missing_or_wrong_directory_is_reported_at_the_pretrained_field(tiny_hf_dirs: dict[str, Path], tmp_path: Path):
    with pytest.raises(ValidationError) as exc:
        VisionConfig(pretrained=tmp_path / "nowhere")
    loc, message = only_error(exc)
    assert loc == ("pretrained",) and f"{tmp_path / 'nowhere'} does not exist" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError) as exc:
        LanguageModelConfig(pretrained=tmp_path / "empty")
    assert only_error(exc) == (("pretrained",), f"Value error, {tmp_path / 'empty'} has no config.json (a local HF transformers directory: config.json + *.safetensors)")
    with pytest.raises(ValidationError) as exc:
        VisionConfig(pretrained=tiny_hf_dirs["llama"])
    assert "holds a 'llama' model, not a vision tower" in only_error(exc)[1] and "clip, clip_vision_model, siglip" in only_error(exc)[1]
    with pytest.raises(ValidationError) as exc:
        LanguageModelConfig(pretrained=tiny_hf_dirs["clip"])
    assert "supported causal LMs: llama, mistral, qwen2, qwen3" in only_error(exc)[1]


def test_visual_experts_need_our_own_lm(tiny_hf_dirs: dict[str, Path]):
    with pytest.raises(ValidationError, match="visual_expert copies the layers of mmops' own LM"):
        ModelConfig(language_model=LanguageModelConfig(pretrained=tiny_hf_dirs["llama"]), visual_expert=True)
