"""What a dataset's DVC stage depends on: unchanged for trained tokenizers, the file's hash for pretrained ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from components.data.pretrained_tokenizer import tokenizer_sha256
from flows.data_task import dataset_params
from mmops.recipe import DataConfig


def test_a_trained_tokenizer_s_parameters_are_as_before_pretrained_tokenizers_existed():
    assert dataset_params(DataConfig())["tokenizer"] == {"vocab_size": 512}  # existing datasets keep their DVC cache


def test_a_pretrained_tokenizer_is_recorded_with_its_sha256_and_read_back_by_the_data_stage(tiny_hf_dirs: dict[str, Path]):
    params = dataset_params(DataConfig(tokenizer={"pretrained": tiny_hf_dirs["llama"]}))
    assert params["tokenizer"] == {"pretrained": str(tiny_hf_dirs["llama"]), "sha256": tokenizer_sha256(tiny_hf_dirs["llama"])}
    # what `mmops data generate` validates from params.yaml
    assert DataConfig.model_validate({"name": "shapes", **params}).tokenizer.pretrained == tiny_hf_dirs["llama"]


def test_location_tokens_are_a_dependency_of_their_dataset_and_refused_for_a_pretrained_tokenizer(tiny_hf_dirs: dict[str, Path]):

    params = dataset_params(DataConfig(tokenizer={"location_bins": 16}))
    assert params["tokenizer"] == {"vocab_size": 512, "location_bins": 16}
    assert DataConfig.model_validate({"name": "shapes", **params}).tokenizer.location_bins == 16
    with pytest.raises(ValidationError, match="with pretrained, leave them out"):
        DataConfig(tokenizer={"pretrained": tiny_hf_dirs["llama"], "location_bins": 16})


def test_pages_and_coordinate_bins_are_recorded_only_when_a_recipe_asks_for_them():
    assert set(dataset_params(DataConfig())) == {"shapes", "tokenizer"}  # datasets without pages keep their parameters
    params = dataset_params(DataConfig(pages={"train": 12, "image_size": 64}, tokenizer={"coordinate_bins": 32}))
    assert params["pages"]["train"] == 12 and params["pages"]["image_size"] == 64
    assert params["tokenizer"] == {"vocab_size": 512, "coordinate_bins": 32}
