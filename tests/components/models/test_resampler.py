"""Qwen-VL's cross-attention resampler: fixed output length, positions on queries and keys."""

import pytest
import torch

from components.models.positions import sincos_2d
from components.models.resampler import CrossAttentionResampler


def test_any_image_becomes_the_same_number_of_tokens():
    torch.manual_seed(0)
    resampler = CrossAttentionResampler(image_dim=24, out_dim=32, num_queries=16, heads=4).eval()
    for patches in (4, 16, 64):
        assert resampler(torch.randn(2, patches, 24)).shape == (2, 16, 32)


def test_keys_carry_their_place_in_the_grid():
    """Swapping two patches changes what the queries read: the keys know where they are."""
    torch.manual_seed(0)
    resampler = CrossAttentionResampler(image_dim=16, out_dim=16, num_queries=4, heads=2).eval()
    image = torch.randn(1, 16, 16)
    swapped = image.clone()
    swapped[:, [0, 15]] = image[:, [15, 0]]
    with torch.no_grad():
        assert not torch.allclose(resampler(image), resampler(swapped), atol=1e-4)


def test_attention_is_one_layer_over_positioned_keys():
    """The output equals a hand-written single cross-attention with 2D sin-cos positions on queries and keys."""
    torch.manual_seed(0)
    r = CrossAttentionResampler(image_dim=8, out_dim=12, num_queries=4, dim=8, heads=1).eval()
    image = torch.randn(1, 9, 8)
    with torch.no_grad():
        values = r.kv_norm(r.kv_proj(image))
        q = r.query_norm(r.queries) + sincos_2d(8, 2, 2)
        k = values + sincos_2d(8, 3, 3)
        w_q, w_k, w_v = r.attention.in_proj_weight.chunk(3)
        b_q, b_k, b_v = r.attention.in_proj_bias.chunk(3)
        scores = (q @ w_q.T + b_q) @ (k @ w_k.T + b_k).transpose(1, 2) / 8**0.5
        mixed = scores.softmax(-1) @ (values @ w_v.T + b_v)
        expected = r.out_proj(r.out_norm(r.attention.out_proj(mixed)))
        torch.testing.assert_close(r(image), expected, atol=1e-5, rtol=1e-5)


def test_non_square_grids_are_refused():
    with pytest.raises(ValueError, match="not a square number"):
        CrossAttentionResampler(image_dim=8, out_dim=8, num_queries=10)
    with pytest.raises(ValueError, match="image tokens: 10 is not a square number"):
        CrossAttentionResampler(image_dim=8, out_dim=8, num_queries=4, heads=2)(torch.randn(1, 10, 8))
