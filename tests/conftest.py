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
from tests.services import postgres_admin_or_skip, prefect_server

TESTS = Path(__file__).parent
TINY_RECIPE = TESTS / "e2e" / "tiny_llava.yaml"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the PostgreSQL admin database (tests.services), for making databases of their own."""
    engine = postgres_admin_or_skip()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def loopback_prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API URL of one real Prefect server on loopback, for the whole session (tests.services.prefect_server)."""
    root = tmp_path_factory.mktemp("prefect")
    server = prefect_server(root / "home", root / "server.log").start()
    try:
        yield f"{server.url}/api"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runs_on_loopback_prefect(loopback_prefect_api: str) -> Iterator[None]:
    """For a module whose runs are not about where Prefect runs: `mmops run` there tracks its flow on the session's
    server (MMOPS_PREFECT_API_URL), as on a shared stack, instead of starting an ephemeral server and migrating a new
    database for every workdir (about 6 s a run on 2 cores). The embedded default stays under test wherever a module
    does not ask for this: tests/e2e/test_pipeline.py, the reliability tests of killed and terminated runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMOPS_PREFECT_API_URL", loopback_prefect_api)
        yield


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
