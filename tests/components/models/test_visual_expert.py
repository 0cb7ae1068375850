"""CogVLM's visual expert: starts as the LM, leaves text-only inputs to the LM, gives image tokens their own path."""

import torch

from components.models.blocks import RotaryEmbedding, TransformerBlock
from components.models.language_model import causal_padding_mask
from components.models.visual_expert import VisualExpertBlock, add_visual_experts

DIM, HEADS = 16, 2


def setup():
    torch.manual_seed(0)
    block = TransformerBlock(DIM, HEADS, 32, "swiglu", "rmsnorm", rotary=True).eval()
    x = torch.randn(2, 7, DIM)
    mask = causal_padding_mask(torch.ones(2, 7), 7)
    cos_sin = RotaryEmbedding(DIM // HEADS)(torch.arange(7).expand(2, -1))
    image_mask = torch.zeros(2, 7, dtype=torch.bool)
    image_mask[:, 1:4] = True
    return block, x, mask, cos_sin, image_mask


def test_expert_initialised_from_the_lm_computes_what_the_lm_does():
    block, x, mask, cos_sin, image_mask = setup()
    expert = VisualExpertBlock(block).eval()
    with torch.no_grad():
        torch.testing.assert_close(expert(x, mask, cos_sin, image_mask=image_mask)[0], block(x, mask, cos_sin)[0])


def test_expert_weights_change_image_tokens_and_what_follows_them_only():
    block, x, mask, cos_sin, image_mask = setup()
    expert = VisualExpertBlock(block).eval()
    with torch.no_grad():
        for p in (*expert.image_qkv.parameters(), *expert.image_mlp.parameters()):
            p.add_(0.1 * torch.randn_like(p))
        changed = expert(x, mask, cos_sin, image_mask=image_mask)[0]
        reference = block(x, mask, cos_sin)[0]
        text_only = expert(x, mask, cos_sin)[0]
    torch.testing.assert_close(changed[:, :1], reference[:, :1])  # the token before the image cannot see it
    assert not torch.allclose(changed[:, 1:4], reference[:, 1:4])  # image tokens take the expert path
    assert not torch.allclose(changed[:, 4:], reference[:, 4:])  # later text reads the image's new keys and values
    torch.testing.assert_close(text_only, reference)  # no image tokens: the LM exactly


def test_lm_weights_are_shared_not_copied():
    block, *_ = setup()
    blocks = add_visual_experts(torch.nn.ModuleList([block]))
    assert blocks[0].attn.qkv.weight is block.attn.qkv.weight
    assert blocks[0].image_qkv.weight is not block.attn.qkv.weight
    torch.testing.assert_close(blocks[0].image_qkv.weight, block.attn.qkv.weight)
