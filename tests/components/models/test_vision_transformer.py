import pytest
import torch

from components.models.builders import build_vision
from components.models.config import VisionConfig

CFG = VisionConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=2)


@pytest.fixture
def vit():
    torch.manual_seed(0)
    return build_vision(CFG).eval()


def test_shapes(vit):
    pixels = torch.randn(3, 3, 16, 16)
    assert vit(pixels).shape == (3, 1 + CFG.num_patches, 32)
    assert vit.hidden_states(pixels, -2).shape == (3, 17, 32)
    assert vit.pooled(pixels).shape == (3, 32)


def test_forward_is_final_norm_of_last_hidden_state(vit):
    pixels = torch.randn(2, 3, 16, 16)
    last = vit.hidden_states(pixels, -1)
    torch.testing.assert_close(vit(pixels), vit.norm(last))
    assert not torch.allclose(vit(pixels), last)
    torch.testing.assert_close(vit.hidden_states(pixels, 1), last)
    torch.testing.assert_close(vit.pooled(pixels), vit(pixels)[:, 0])


def test_penultimate_layer_is_after_first_block(vit):
    pixels = torch.randn(2, 3, 16, 16)
    manual = vit._embed(pixels)
    manual, _ = vit.blocks[0](manual)
    torch.testing.assert_close(vit.hidden_states(pixels, -2), manual)
    torch.testing.assert_close(vit.hidden_states(pixels, 0), manual)


def test_patch_tokens_follow_their_patch(vit):
    # The top-left patch token depends only on the top-left patch (before attention mixes).
    pixels = torch.randn(1, 3, 16, 16)
    changed = pixels.clone()
    changed[..., 12:, 12:] += 1.0  # last patch only
    a, b = vit._embed(pixels), vit._embed(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_bad_layer_and_image_size(vit):
    with pytest.raises(ValueError, match="layer=2 is out of range"):
        vit.hidden_states(torch.randn(1, 3, 16, 16), 2)
    with pytest.raises(ValueError, match="expects pixel_values"):
        vit(torch.randn(1, 3, 32, 32))


def test_conv_stem_tiles_like_the_patch_stem_and_is_refused_for_odd_patches():
    import pytest
    import torch

    from components.models.config import VisionConfig
    from components.models.vision import VisionTransformer

    cfg = VisionConfig(image_size=32, patch_size=8, dim=16, depth=1, heads=2, stem="conv")
    out = VisionTransformer(cfg)(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1 + cfg.num_patches, 16) and cfg.num_patches == 16
    with pytest.raises(ValueError, match="multiple of 4"):
        VisionConfig(image_size=30, patch_size=6, stem="conv")


def test_pixel_statistics_are_applied_inside_the_tower_and_not_saved():
    plain_cfg = VisionConfig(image_size=16, patch_size=4, dim=16, depth=1, heads=2)
    mean, std = (-0.7, -0.5, 0.1), (0.3, 0.2, 0.5)
    normed_cfg = plain_cfg.model_copy(update={"pixel_mean": mean, "pixel_std": std})
    torch.manual_seed(0)
    plain = build_vision(plain_cfg)
    normed = build_vision(normed_cfg)
    normed.load_state_dict(plain.state_dict())  # same weights; the statistics are not in the state dict
    assert "pixel_mean" not in plain.state_dict()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    by_hand = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(normed(x), plain(by_hand))
    assert not torch.allclose(normed(x), plain(x))


def test_pixel_std_must_be_positive():
    with pytest.raises(ValueError, match="pixel_std"):
        VisionConfig(pixel_std=(1.0, 0.0, 1.0))


def test_mean_pool_averages_the_normed_patch_tokens_and_keeps_the_weights():
    torch.manual_seed(0)
    cls_tower = build_vision(CFG)
    mean_tower = build_vision(CFG.model_copy(update={"pool": "mean"}))
    mean_tower.load_state_dict(cls_tower.state_dict())  # pooling is not a weight: checkpoints interchange
    pixels = torch.randn(2, 3, 16, 16)
    tokens = cls_tower(pixels)
    torch.testing.assert_close(mean_tower.pooled(pixels), tokens[:, 1:].mean(dim=1))
    torch.testing.assert_close(cls_tower.pooled(pixels), tokens[:, 0])
    with pytest.raises(ValueError, match="pool"):
        VisionConfig(pool="max")
