"""CogVLM's visual expert: starts as the LM, leaves text-only inputs to the LM, gives image tokens their own path."""

import torch

from components.data.tokenizer import train_tokenizer
from components.models.blocks import RotaryEmbedding, TransformerBlock
from components.models.builders import build_llava
from components.models.family import ModelConfig
from components.models.language_model import causal_padding_mask, positions_sharing_image
from components.models.visual_expert import VisualExpert, expert_weights_from_lm, visual_experts
from components.training.checkpoints import init_part
from components.training.freeze import apply_freeze_plan

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
    expert = VisualExpert(block).eval()
    with torch.no_grad():
        torch.testing.assert_close(expert(block, x, mask, cos_sin, image_mask=image_mask)[0], block(x, mask, cos_sin)[0])


def test_expert_weights_change_image_tokens_and_what_follows_them_only():
    block, x, mask, cos_sin, image_mask = setup()
    expert = VisualExpert(block).eval()
    with torch.no_grad():
        for p in (*expert.qkv.parameters(), *expert.mlp.parameters()):
            p.add_(0.1 * torch.randn_like(p))
        changed = expert(block, x, mask, cos_sin, image_mask=image_mask)[0]
        reference = block(x, mask, cos_sin)[0]
        text_only = expert(block, x, mask, cos_sin)[0]
    torch.testing.assert_close(changed[:, :1], reference[:, :1])  # the token before the image cannot see it
    assert not torch.allclose(changed[:, 1:4], reference[:, 1:4])  # image tokens take the expert path
    assert not torch.allclose(changed[:, 4:], reference[:, 4:])  # later text reads the image's new keys and values
    torch.testing.assert_close(text_only, reference)  # no image tokens: the LM exactly


def test_experts_are_copies_not_the_lm_weights_themselves():
    block, *_ = setup()
    experts = visual_experts(torch.nn.ModuleList([block]))
    assert experts[0].qkv.weight is not block.attn.qkv.weight
    torch.testing.assert_close(experts[0].qkv.weight, block.attn.qkv.weight)


def test_image_tokens_share_one_position_id():
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]])
    image = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 0]]).bool()
    assert positions_sharing_image(mask, image).tolist() == [[0, 0, 1, 1, 1, 2, 3], [0, 1, 1, 2, 3, 4, 4]]


def tiny_cogvlm():
    tokenizer = train_tokenizer(["a red circle", "what colour is the square"], vocab_size=300)
    cfg = ModelConfig(
        vision={"image_size": 16, "patch_size": 4, "dim": 16, "depth": 2, "heads": 2},
        language_model={"dim": 16, "depth": 2, "heads": 2, "mlp_hidden": 32, "max_seq_len": 64},
        connector="swiglu_adapter", visual_expert=True, image_positions="shared",
    )
    torch.manual_seed(0)
    return build_llava(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id), tokenizer


def test_a_stage_starts_the_experts_from_a_text_only_lm_and_trains_them_with_the_lm_frozen():
    model, tokenizer = tiny_cogvlm()
    torch.manual_seed(1)
    lm_checkpoint = {f"language_model.{k}": torch.randn_like(v) for k, v in model.language_model.state_dict().items()}
    assert init_part(model, "language_model", lm_checkpoint, "lm") > 0
    assert init_part(model, "visual_expert", lm_checkpoint, "lm") == len(expert_weights_from_lm(lm_checkpoint))
    torch.testing.assert_close(model.visual_expert[1].qkv.weight, lm_checkpoint["language_model.blocks.1.attn.qkv.weight"])
    torch.testing.assert_close(model.visual_expert[0].mlp.down.weight, lm_checkpoint["language_model.blocks.0.mlp.down.weight"])

    report = apply_freeze_plan(model, ["connector", "visual_expert"])
    assert not any(n.startswith("language_model.") for n in report.trainable)
    ids = torch.tensor([[tokenizer.bos_id, tokenizer.image_id, 5, 6, 7]])
    batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=torch.randn(1, 3, 16, 16),
                 has_image=torch.tensor([1]), labels=ids.clone())
    model(**batch)["loss"].backward()
    assert model.visual_expert[0].qkv.weight.grad.abs().sum() > 0
    spliced = model.build_inputs(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["has_image"])
    assert spliced.position_ids[0].tolist() == [0, 1] + [1] * 15 + [2, 3, 4]  # 16 image tokens at one position
    model.eval()
    answer = model.generate(ids, torch.ones_like(ids), batch["pixel_values"], torch.tensor([1]), 4, tokenizer.eos_id)
    uncached = model.generate(ids, torch.ones_like(ids), batch["pixel_values"], torch.tensor([1]), 4, tokenizer.eos_id, use_cache=False)
    assert answer == uncached
