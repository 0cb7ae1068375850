"""Shared fixtures: one tiny Shapes dataset and a tokenizer trained on it, built once."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from components.data.conversation import corpus_texts
from components.data.llava_json import load_llava_json
from components.data.shapes_dataset import generate_shapes_dataset
from components.data.shapes_world import ShapesConfig
from components.data.tokenizer import TextTokenizer, train_tokenizer


@pytest.fixture(scope="session")
def tiny_shapes_config() -> ShapesConfig:
    return ShapesConfig(seed=7, train=60, val=8, test=8, max_shapes=4)


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory, tiny_shapes_config: ShapesConfig) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    generate_shapes_dataset(tiny_shapes_config, out)
    return out


@pytest.fixture(scope="session")
def tokenizer(shapes_dir: Path) -> TextTokenizer:
    samples = itertools.chain(
        load_llava_json(shapes_dir / "captions_train.json"),
        load_llava_json(shapes_dir / "instruct_train.json"),
    )
    extra = ["A cat sits on a mat.", "What is the man holding?"]
    return train_tokenizer(itertools.chain(corpus_texts(samples), extra * 20), vocab_size=400)
