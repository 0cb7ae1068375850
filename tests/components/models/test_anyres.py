"""LLaVA-1.6 any-resolution helpers against HF transformers' LLaVA-NeXT code."""

from types import SimpleNamespace

import pytest
import torch

from components.models.anyres import anyres_grid_shape, merge_anyres_features, select_best_resolution, unpad_features

transformers = pytest.importorskip("transformers")
from transformers import LlavaNextConfig  # noqa: E402
from transformers.image_processing_utils import select_best_resolution as hf_select_best_resolution  # noqa: E402
from transformers.models.llava_next.modeling_llava_next import (  # noqa: E402
    LlavaNextModel,
    get_anyres_image_grid_shape,
    unpad_image,
)

PINPOINTS = [(32, 32), (32, 64), (64, 32), (64, 64), (32, 96), (96, 32)]
SIZES = [(20, 20), (30, 70), (70, 30), (33, 100), (100, 33), (64, 64), (17, 45), (90, 91), (5, 200)]


@pytest.mark.parametrize("size", SIZES)
def test_best_resolution_and_grid_match_hf(size):
    assert select_best_resolution(size, PINPOINTS) == tuple(hf_select_best_resolution(size, [list(p) for p in PINPOINTS]))
    assert anyres_grid_shape(size, PINPOINTS, 32) == tuple(get_anyres_image_grid_shape(list(size), [list(p) for p in PINPOINTS], 32))


@pytest.mark.parametrize("size", SIZES)
def test_unpad_matches_hf(size):
    features = torch.randn(3, 8, 12)
    torch.testing.assert_close(unpad_features(features, size), unpad_image(features, list(size)))


@pytest.mark.parametrize("size", [(30, 70), (70, 30), (20, 20), (33, 100)])
def test_merged_features_match_hf_pack_image_features(size):
    tile, patch, dim = 32, 8, 6
    config = LlavaNextConfig(
        vision_config={"model_type": "clip_vision_model", "image_size": tile, "patch_size": patch},
        text_config={"model_type": "llama", "hidden_size": dim, "num_attention_heads": 2, "num_key_value_heads": 2},
        image_grid_pinpoints=[list(p) for p in PINPOINTS],
    )
    rows, cols = anyres_grid_shape(size, PINPOINTS, tile)
    torch.manual_seed(0)
    features = torch.randn(1 + rows * cols, (tile // patch) ** 2, dim)
    separator = torch.randn(dim)
    expected, _ = LlavaNextModel.pack_image_features(
        SimpleNamespace(config=config), [features], torch.tensor([size]), "default", image_newline=separator
    )
    got = merge_anyres_features(features, size, PINPOINTS, tile, patch, separator)
    torch.testing.assert_close(got, expected[0])


def test_wide_image_keeps_its_columns_and_ends_every_row_with_the_separator():
    separator = torch.full((4,), 7.0)
    features = torch.randn(1 + 1 * 2, 16, 4)  # a 1x2 grid of 4x4-token tiles
    merged = merge_anyres_features(features, (16, 64), [(32, 64)], 32, 8, separator)
    # 64 wide in a 64-wide canvas: no columns dropped; 16 of 32 rows are image: 2 of 4 token rows kept
    rows = merged[16:].view(2, 8 + 1, 4)
    assert (rows[:, -1] == 7.0).all() and not (rows[:, :-1] == 7.0).all(-1).any()
    torch.testing.assert_close(merged[:16], features[0])


def test_wrong_tile_count_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 1x2 tiles"):
        merge_anyres_features(torch.randn(2, 16, 4), (16, 64), [(32, 64)], 32, 8, torch.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        select_best_resolution((3, 3), [])
