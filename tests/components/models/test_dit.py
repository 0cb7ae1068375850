"""The diffusion transformer: an adaLN-Zero block against diffusers' DiT block, identity at initialisation,
factorised attention that keeps to its axis, spacetime patches and the null caption."""

import pytest
import torch

from components.models.config import DiTConfig
from components.models.diffusion.dit import AdaLNZeroBlock, Caption, DiffusionTransformer
from components.models.diffusion.patches import patchify, unpatchify

DIM, HEADS = 32, 4


def caption(batch: int = 2, length: int = 5, pooled_dim: int = 16, token_dim: int = 24) -> Caption:
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, 3:] = False
    return Caption(torch.randn(batch, pooled_dim), torch.randn(batch, length, token_dim), mask)


def randomise(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.2)
    return module


def test_adaln_zero_block_matches_a_diffusers_dit_block():
    attention = pytest.importorskip("diffusers.models.attention")
    torch.manual_seed(0)
    theirs = attention.BasicTransformerBlock(
        DIM, HEADS, DIM // HEADS, norm_type="ada_norm_zero", num_embeds_ada_norm=10, activation_fn="gelu-approximate",
        attention_bias=True, norm_elementwise_affine=False, norm_eps=1e-6,
    ).eval()
    randomise(theirs)
    ours = AdaLNZeroBlock(DIM, HEADS, 4 * DIM, "full").eval()
    with torch.no_grad():
        a = theirs.attn1
        ours.attn.qkv.weight.copy_(torch.cat([a.to_q.weight, a.to_k.weight, a.to_v.weight]))
        ours.attn.qkv.bias.copy_(torch.cat([a.to_q.bias, a.to_k.bias, a.to_v.bias]))
        ours.attn.proj.load_state_dict(a.to_out[0].state_dict())
        ours.mlp.fc_in.load_state_dict(theirs.ff.net[0].proj.state_dict())
        ours.mlp.fc_out.load_state_dict(theirs.ff.net[2].state_dict())
        ours.modulation.load_state_dict(theirs.norm1.linear.state_dict())
    x, t, labels = torch.randn(2, 12, DIM), torch.tensor([3, 700]), torch.tensor([1, 7])
    with torch.no_grad():
        c = theirs.norm1.emb(t, labels, hidden_dtype=x.dtype)  # their conditioning vector: timestep + class
        expected = theirs(x, timestep=t, class_labels=labels)
        got = ours(x, c, (1, 3, 4))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["full", "factorised"])
def test_every_block_starts_as_the_identity_and_the_model_predicts_zero(attention):
    torch.manual_seed(1)
    model = DiffusionTransformer(DiTConfig(dim=DIM, depth=2, heads=HEADS, attention=attention), 4, 16, 24)
    x, cap = torch.randn(2, 4, 3, 8, 8), caption()
    h = torch.randn(2, 3 * 4 * 4, DIM)
    for block in model.blocks:
        torch.testing.assert_close(block(h, torch.randn(2, DIM), (3, 4, 4), cap), h)
    assert torch.count_nonzero(model(x, torch.tensor([5, 500]), cap)) == 0


def test_space_blocks_keep_to_frames_and_time_blocks_to_places():
    torch.manual_seed(2)
    grid = (3, 2, 2)
    for axis in ("space", "time"):
        block = randomise(AdaLNZeroBlock(DIM, HEADS, 64, axis)).eval()
        h, c = torch.randn(1, 12, DIM), torch.randn(1, DIM)
        changed = h.clone()
        changed[0, 4] += 1.0  # frame 1, place 0
        moved = (block(changed, c, grid) - block(h, c, grid)).abs().sum(-1)[0] > 1e-6  # (12,) tokens that changed
        same_frame = torch.tensor([i // 4 == 1 for i in range(12)])
        same_place = torch.tensor([i % 4 == 0 for i in range(12)])
        assert torch.equal(moved, same_frame if axis == "space" else same_place), axis


def test_patches_round_trip_at_any_size_and_refuse_sides_they_do_not_divide():
    x = torch.randn(2, 4, 6, 8, 12)
    tokens, grid = patchify(x, 2, 4)
    assert grid == (3, 2, 3) and tokens.shape == (2, 18, 4 * 2 * 4 * 4)
    assert torch.equal(tokens[0, 0], x[0, :, :2, :4, :4].reshape(-1))  # a token is its patch, channels first
    assert torch.equal(unpatchify(tokens, grid, 4, 2, 4), x)
    with pytest.raises(ValueError, match="height 8 does not cut into patches of 5"):
        patchify(x, 1, 5)
    with pytest.raises(ValueError, match="frames 6 does not cut into patches of 4"):
        patchify(x, 4, 4)


def test_the_model_takes_images_and_videos_of_any_shape_and_drops_captions_row_by_row():
    torch.manual_seed(3)
    model = randomise(DiffusionTransformer(DiTConfig(dim=DIM, depth=2, heads=HEADS, attention="factorised"), 4, 16, 24)).eval()
    cap = caption()
    for shape in ((2, 4, 1, 8, 8), (2, 4, 3, 4, 12)):  # an image, a wide video
        assert model(torch.randn(shape), torch.tensor([1, 900]), cap).shape == shape
    x, t = torch.randn(2, 4, 2, 4, 4), torch.tensor([10, 10])
    with torch.no_grad():
        kept = model(x, t, cap)
        dropped = model(x, t, cap, drop=torch.tensor([False, True]))
        other = Caption(torch.randn(2, 16), torch.randn(2, 5, 24), cap.mask)
        dropped_other = model(x, t, other, drop=torch.tensor([False, True]))
    assert torch.equal(dropped[0], kept[0]) and not torch.allclose(dropped[1], kept[1])
    torch.testing.assert_close(dropped_other[1], dropped[1])  # a dropped row no longer depends on its caption
