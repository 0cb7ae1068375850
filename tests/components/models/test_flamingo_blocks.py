"""Flamingo's Perceiver Resampler and gated cross-attention against HF's IDEFICS, and their behaviour."""

import pytest
import torch

from components.models.gated_cross_attention import GatedCrossAttentionBlock, media_attention_mask
from components.models.perceiver import PerceiverResampler

transformers = pytest.importorskip("transformers")
from transformers import IdeficsConfig  # noqa: E402
from transformers.models.idefics.modeling_idefics import IdeficsGatedCrossAttentionLayer  # noqa: E402
from transformers.models.idefics.perceiver import IdeficsPerceiverResampler  # noqa: E402

DIM, HEADS, VISION_DIM = 32, 4, 24


def idefics_config(**extra) -> IdeficsConfig:
    return IdeficsConfig(
        hidden_size=DIM, num_attention_heads=HEADS, intermediate_size=48, hidden_act="silu", vocab_size=40,
        vision_config={"embed_dim": VISION_DIM, "image_size": 16, "patch_size": 8, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "intermediate_size": 32},
        perceiver_config={"use_resampler": True, "qk_layer_norms_perceiver": False},
        attn_implementation="eager", **extra,
    )


def randomise_norms(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name.lower() or name.endswith(".ln.weight") or name.endswith(".ln.bias"):
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)


def test_perceiver_resampler_matches_idefics():
    torch.manual_seed(0)
    hf = IdeficsPerceiverResampler(idefics_config(), VISION_DIM, depth=2, n_heads=3, head_dim=8, n_latents=5).eval()
    randomise_norms(hf)
    ours = PerceiverResampler(VISION_DIM, num_latents=5, depth=2, heads=3, head_dim=8, mlp_ratio=4.0, activation="relu").eval()
    h = hf.state_dict()
    with torch.no_grad():
        ours.latents.copy_(h["latents"])
        ours.time_embedding.zero_()  # IDEFICS resamples single images: no time embedding
        ours.norm.load_state_dict({"weight": h["layer_norm.weight"], "bias": h["layer_norm.bias"]})
        for i, layer in enumerate(ours.layers):
            p = f"blocks.{i}"
            layer.context_norm.load_state_dict({k: h[f"{p}.0.context_layer_norm.{k}"] for k in ("weight", "bias")})
            layer.latents_norm.load_state_dict({k: h[f"{p}.0.latents_layer_norm.{k}"] for k in ("weight", "bias")})
            layer.attention.query.weight.copy_(h[f"{p}.0.q_proj.weight"])
            layer.attention.key_value.weight.copy_(torch.cat([h[f"{p}.0.k_proj.weight"], h[f"{p}.0.v_proj.weight"]]))
            layer.attention.proj.weight.copy_(h[f"{p}.0.output_proj.weight"])
            norm, fc_in, _, fc_out = layer.feed_forward
            norm.load_state_dict({k: h[f"{p}.1.ln.{k}"] for k in ("weight", "bias")})
            fc_in.weight.copy_(h[f"{p}.1.fc.weight"])
            fc_out.weight.copy_(h[f"{p}.1.c_proj.weight"])
    context = torch.randn(2, 7, VISION_DIM)
    with torch.no_grad():
        torch.testing.assert_close(ours(context), hf(context), atol=1e-5, rtol=1e-5)


def test_perceiver_gives_a_fixed_number_of_tokens_and_tells_frames_apart():
    torch.manual_seed(0)
    resampler = PerceiverResampler(16, num_latents=6, depth=1, heads=2, max_frames=4).eval()
    video = torch.randn(2, 3, 5, 16)  # (B, frames, patches, dim)
    assert resampler(video).shape == (2, 6, 16)
    assert resampler(torch.randn(2, 9, 16)).shape == (2, 6, 16)  # an image
    reordered = video[:, [2, 1, 0]]
    with torch.no_grad():  # the same patches in another frame order are another video
        assert not torch.allclose(resampler(video), resampler(reordered), atol=1e-5)
    with pytest.raises(ValueError, match="max_frames=4"):
        resampler(torch.randn(1, 5, 2, 16))


def test_gated_block_matches_idefics_with_open_gates():
    torch.manual_seed(0)
    config = idefics_config(alpha_initializer="zeros", alpha_type="float")
    hf = IdeficsGatedCrossAttentionLayer(config, layer_idx=0).eval()
    randomise_norms(hf)
    with torch.no_grad():  # open the gates, or the comparison would only see the residual
        hf.alpha_cross_attn.fill_(0.7)
        hf.alpha_dense.fill_(-0.4)
    ours = GatedCrossAttentionBlock(DIM, HEADS, mlp_hidden=48, media_dim=VISION_DIM).eval()
    h = hf.state_dict()
    with torch.no_grad():
        ours.attention_norm.weight.copy_(h["input_layernorm.weight"])
        ours.mlp_norm.weight.copy_(h["post_attention_layernorm.weight"])
        ours.cross_attention.query.weight.copy_(h["cross_attn.q_proj.weight"])
        ours.cross_attention.key_value.weight.copy_(torch.cat([h["cross_attn.k_proj.weight"], h["cross_attn.v_proj.weight"]]))
        ours.cross_attention.proj.weight.copy_(h["cross_attn.o_proj.weight"])
        for name in ("gate", "up", "down"):
            getattr(ours.mlp, name).weight.copy_(h[f"mlp.{name}_proj.weight"])
        ours.attention_gate.copy_(h["alpha_cross_attn"])
        ours.mlp_gate.copy_(h["alpha_dense"])
    ids = torch.tensor([[5, 9, 3, 3, 9, 3], [3, 3, 9, 3, 3, 3]])  # 9 = <image>
    mask, sees = media_attention_mask(ids, media_token_id=9, tokens_per_media=2, num_media=2)
    x, media = torch.randn(2, 6, DIM), torch.randn(2, 4, VISION_DIM)
    additive = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    with torch.no_grad():
        expected = hf(x, image_hidden_states=media, image_attention_mask=additive, cross_attention_gate=sees.long())
        torch.testing.assert_close(ours(x, media, mask, sees), expected, atol=1e-5, rtol=1e-5)


def test_gated_block_is_the_identity_at_initialisation():
    torch.manual_seed(0)
    block = GatedCrossAttentionBlock(DIM, HEADS, mlp_hidden=48, media_dim=VISION_DIM)
    ids = torch.tensor([[9, 1, 2, 9, 3]])
    mask, sees = media_attention_mask(ids, 9, tokens_per_media=3, num_media=2)
    x = torch.randn(1, 5, DIM)
    assert torch.equal(block(x, torch.randn(1, 6, VISION_DIM), mask, sees), x)


def test_text_sees_only_its_latest_image():
    ids = torch.tensor([[1, 9, 2, 3, 9, 4]])  # text, <image>#0, text, text, <image>#1, text
    mask, sees = media_attention_mask(ids, media_token_id=9, tokens_per_media=2, num_media=3)
    m = mask[0, 0].int().tolist()
    assert sees[0].tolist() == [False, True, True, True, True, True]
    assert m[1] == m[2] == m[3] == [1, 1, 0, 0, 0, 0]  # image 0's two tokens only
    assert m[4] == m[5] == [0, 0, 1, 1, 0, 0]  # from the second image on, image 1's only
    torch.manual_seed(0)
    block = GatedCrossAttentionBlock(8, 2, mlp_hidden=16).eval()
    with torch.no_grad():
        block.attention_gate.fill_(1.0)
        media = torch.randn(1, 6, 8)
        changed = media.clone()
        changed[:, 0:2] += 1.0  # edit image 0
        x = torch.randn(1, 6, 8)
        a, b = block(x, media, mask, sees), block(x, changed, mask, sees)
    assert torch.equal(a[:, 0], x[:, 0])  # text before any image is untouched
    assert not torch.allclose(a[:, 1:4], b[:, 1:4])  # tokens after image 0 read it
    torch.testing.assert_close(a[:, 4:], b[:, 4:])  # tokens after image 1 do not


def test_more_images_than_slots_is_an_error():
    with pytest.raises(ValueError, match="only 1 media slots"):
        media_attention_mask(torch.tensor([[9, 9]]), 9, tokens_per_media=2, num_media=1)
