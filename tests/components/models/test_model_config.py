import pytest
from pydantic import ValidationError

from components.models.config import LanguageModelConfig, TextEncoderConfig, VisionConfig


def test_vision_defaults_and_num_patches():
    cfg = VisionConfig()
    assert (cfg.image_size, cfg.patch_size, cfg.dim) == (64, 8, 128)
    assert cfg.num_patches == 64
    assert VisionConfig(image_size=16, patch_size=4, dim=32, heads=2).num_patches == 16


def test_patch_must_divide_image():
    with pytest.raises(ValidationError, match="patch_size=5 must divide image_size=16"):
        VisionConfig(image_size=16, patch_size=5)


@pytest.mark.parametrize("cls", [VisionConfig, TextEncoderConfig, LanguageModelConfig])
def test_heads_must_divide_dim(cls):
    with pytest.raises(ValidationError, match="heads=3 must divide dim=32"):
        cls(dim=32, heads=3)


def test_unknown_keys_rejected_and_frozen():
    with pytest.raises(ValidationError):
        LanguageModelConfig(vocab_size=100)
    cfg = LanguageModelConfig()
    with pytest.raises(ValidationError):
        cfg.dim = 64


def test_language_model_defaults():
    cfg = LanguageModelConfig()
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.mlp_hidden, cfg.max_seq_len) == (128, 4, 4, 344, 512)
    assert cfg.rope_theta == 10000.0


def test_the_resampler_connector_needs_its_config_and_a_square_query_grid():
    from components.models.config import ResamplerConfig
    from components.models.family import ModelConfig

    with pytest.raises(ValidationError, match="connector 'resampler' .* set model.resampler"):
        ModelConfig(connector="resampler")
    with pytest.raises(ValidationError, match="num_queries=10 is not a square number"):
        ResamplerConfig(num_queries=10)
    with pytest.raises(ValidationError, match="attention width 30 .* divisible by heads=4 and by 4"):
        ModelConfig(connector="resampler", resampler={"num_queries": 4, "heads": 4},
                    language_model={"dim": 30, "heads": 3, "mlp_hidden": 64})
    assert ModelConfig(connector="resampler", resampler={"num_queries": 16}).resampler.heads == 4
