import math

import pytest
import torch

from components.models.builders import build_vision
from components.models.config import VisionConfig
from components.models.positions import sincos_1d, sincos_2d


def test_sincos_1d_values_written_out():
    table = sincos_1d(4, torch.tensor([0, 3]))
    # frequencies 10000^(-0/2) = 1 and 10000^(-1/2) = 0.01; sines first, then cosines
    expected = [[0.0, 0.0, 1.0, 1.0], [math.sin(3), math.sin(0.03), math.cos(3), math.cos(0.03)]]
    torch.testing.assert_close(table, torch.tensor(expected))


def test_sincos_2d_halves_encode_column_then_row():
    table = sincos_2d(8, height=2, width=3)  # row-major: index = row * 3 + col
    assert table.shape == (6, 8)
    cols, rows = table[:, :4], table[:, 4:]
    torch.testing.assert_close(cols[0], cols[3])  # (row 0, col 0) and (row 1, col 0): same column code
    torch.testing.assert_close(rows[0], rows[2])  # (row 0, col 0) and (row 0, col 2): same row code
    assert not torch.allclose(cols[0], cols[1]) and not torch.allclose(rows[0], rows[3])
    assert len({tuple(r.tolist()) for r in table}) == 6  # every patch has its own code


@pytest.mark.parametrize("dim", [2, 6])
def test_sincos_2d_needs_dim_divisible_by_four(dim):
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_2d(dim, 2, 2)


def test_vision_tower_with_fixed_positions_saves_none_and_adds_the_table():
    cfg = VisionConfig(image_size=16, patch_size=4, dim=32, depth=1, heads=2, position_embedding="sincos2d")
    vit = build_vision(cfg).eval()
    assert "pos_embed" not in vit.state_dict()
    pixels = torch.randn(2, 3, 16, 16)
    patches = vit.patch_embed((pixels - vit.pixel_mean) / vit.pixel_std).flatten(2).transpose(1, 2)
    torch.testing.assert_close(vit._embed(pixels)[:, 1:], patches + sincos_2d(32, 4, 4))
    torch.testing.assert_close(vit._embed(pixels)[:, 0], vit.cls_token[0].expand(2, -1))


def test_fixed_positions_need_dim_divisible_by_four():
    with pytest.raises(ValueError, match="sincos2d positions need dim divisible by 4"):
        VisionConfig(dim=18, heads=2, position_embedding="sincos2d")
