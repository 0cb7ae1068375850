"""Fixtures shared across the test tree: a tiny built dataset (Shapes world + tokenizer) and its model config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.shapes_world import ShapesConfig
from components.data.tokenizer import TextTokenizer
from components.models.config import LanguageModelConfig, QFormerConfig, TextEncoderConfig, VisionConfig
from components.models.family import ModelConfig
from tests.services import postgres_admin_or_skip

TESTS = Path(__file__).parent
TINY_RECIPE = TESTS / "e2e" / "tiny_llava.yaml"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the PostgreSQL admin database (tests.services), for making databases of their own."""
    engine = postgres_admin_or_skip()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built") / "shapes"
    build_shapes_dataset(ShapesConfig(seed=3, image_size=32, train=40, val=4, test=8, max_shapes=2), 320, out)
    return out


@pytest.fixture(scope="session")
def built_tokenizer(built_dataset: Path) -> TextTokenizer:
    return load_dataset_tokenizer(built_dataset)


@pytest.fixture(scope="session")
def tiny_model_config() -> ModelConfig:
    return ModelConfig(
        vision=VisionConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2),
        text_encoder=TextEncoderConfig(dim=32, depth=1, heads=2),
        clip_embed_dim=16,
        language_model=LanguageModelConfig(dim=32, depth=2, heads=2, mlp_hidden=64),
        qformer=QFormerConfig(num_queries=4, dim=32, depth=2, heads=2, mlp_ratio=2.0),
    )


@pytest.fixture(scope="session")
def tiny_hf_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Local HF transformers directories of tiny towers (see tests/components/models/tiny_hf.py):
    clip, clip_whole (both CLIP towers), siglip, llama and qwen2 (each with its tokenizer.json)."""
    from tests.components.models import tiny_hf

    root = tmp_path_factory.mktemp("hf")
    return {
        "clip": tiny_hf.save_clip(root / "clip"),
        "clip_whole": tiny_hf.save_clip(root / "clip_whole", whole=True, image_mean=[0.4, 0.5, 0.6]),
        "siglip": tiny_hf.save_siglip(root / "siglip"),
        "llama": tiny_hf.save_llama(root / "llama"),
        "qwen2": tiny_hf.save_qwen2(root / "qwen2"),
    }
