"""Pretrained HF towers behind mmops' interfaces: their outputs are the HF models' own, a LLaVA model on
them decodes the same with and without its KV cache, and a checkpoint of ours rebuilds it from configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.testing import assert_close
from transformers import AutoModelForCausalLM, CLIPModel, CLIPVisionModel, SiglipVisionModel
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from components.data.pretrained_tokenizer import tokenizer_from_pretrained
from components.models.builders import build_flamingo, build_llava
from components.models.config import FlamingoConfig, LanguageModelConfig, VisionConfig
from components.models.family import ModelConfig
from components.models.hf_backbones import HFCausalLM, HFVisionTower
from components.models.hf_config import copy_configs
from components.models.language_model import position_ids_from_mask
from components.training.checkpoints import load_weights, save_weights

EXACT = dict(atol=1e-5, rtol=0)


def hf_pixels(pixels: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """What an HF image processor makes of the same image: [0, 1] pixels normalised per channel."""
    return ((pixels + 1) / 2 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1  # ours: [-1, 1]


def llava_config(dirs: dict[str, Path], vision: str, lm: str) -> ModelConfig:
    return ModelConfig(
        vision=VisionConfig(pretrained=dirs[vision]), language_model=LanguageModelConfig(pretrained=dirs[lm]), connector="mlp2x_gelu"
    )


def test_clip_tower_returns_the_hidden_state_llava_selects(tiny_hf_dirs: dict[str, Path], pixels: torch.Tensor):
    tower = HFVisionTower(VisionConfig(pretrained=tiny_hf_dirs["clip"])).eval()
    reference = CLIPVisionModel.from_pretrained(tiny_hf_dirs["clip"], use_safetensors=True).eval()
    states = reference(pixel_values=hf_pixels(pixels, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD), output_hidden_states=True).hidden_states
    assert tower.hidden_states(pixels, -2).shape == (2, 17, 32)  # class token + 16 patches
    assert_close(tower.hidden_states(pixels, -2), states[-2], **EXACT)  # mm_vision_select_layer -2: the same entry
    assert_close(tower.hidden_states(pixels, -1), states[-1], **EXACT)
    assert_close(tower.hidden_states(pixels, 0), states[1], **EXACT)  # block 0's output; HF's entry 0 is the embeddings
    with pytest.raises(ValueError, match="layer=3 is out of range for depth=3"):
        tower.hidden_states(pixels, 3)


def test_a_whole_clip_checkpoint_serves_its_vision_tower_with_its_preprocessor_statistics(tiny_hf_dirs: dict[str, Path], pixels: torch.Tensor):
    tower = HFVisionTower(VisionConfig(pretrained=tiny_hf_dirs["clip_whole"])).eval()
    reference = CLIPModel.from_pretrained(tiny_hf_dirs["clip_whole"], use_safetensors=True).vision_model.eval()
    out = reference(pixel_values=hf_pixels(pixels, [0.4, 0.5, 0.6], [0.25, 0.5, 0.75]), output_hidden_states=True)
    assert_close(tower.hidden_states(pixels, -2), out.hidden_states[-2], **EXACT)
    assert_close(tower.pooled(pixels), out.pooler_output, **EXACT)  # the normed class token, for a contrastive stage


def test_siglip_tower_puts_the_mean_patch_token_where_clip_has_its_class_token(tiny_hf_dirs: dict[str, Path], pixels: torch.Tensor):
    cfg = llava_config(tiny_hf_dirs, "siglip", "llama")
    tokenizer = tokenizer_from_pretrained(tiny_hf_dirs["llama"])
    model = build_llava(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id).eval()
    reference = SiglipVisionModel.from_pretrained(tiny_hf_dirs["siglip"], use_safetensors=True).eval()
    states = reference(pixel_values=pixels, output_hidden_states=True).hidden_states  # SigLIP's 0.5 / 0.5 statistics: [-1, 1] as it is
    hidden = model.vision.hidden_states(pixels, -2)
    assert hidden.shape == (2, 17, 32)
    assert_close(hidden[:, 1:], states[-2], **EXACT)
    assert_close(hidden[:, 0], states[-2].mean(dim=1), **EXACT)
    with torch.no_grad():  # so LLaVA, dropping index 0, projects every SigLIP patch token and nothing else
        assert_close(model.image_features(pixels), model.connector(states[-2]), **EXACT)


@pytest.mark.parametrize("name", ["llama", "qwen2"])
def test_lm_logits_and_hidden_states_are_the_hf_model_s_own(tiny_hf_dirs: dict[str, Path], name: str):
    reference = AutoModelForCausalLM.from_pretrained(tiny_hf_dirs[name], use_safetensors=True).eval()
    vocab = reference.get_input_embeddings().num_embeddings
    lm = HFCausalLM(LanguageModelConfig(pretrained=tiny_hf_dirs[name]), vocab).eval()
    ids = torch.randint(0, vocab, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])  # left padding, as generation has it
    positions = position_ids_from_mask(mask)
    with torch.no_grad():
        logits, cache = lm(lm.embed(ids), mask, positions)
        expected = reference(input_ids=ids, attention_mask=mask, position_ids=positions)
    assert cache is None
    assert_close(logits, expected.logits, **EXACT)
    hidden, _ = lm.hidden_states(lm.embed(ids), mask, positions)
    assert_close(lm.lm_head(hidden), expected.logits, **EXACT)


def test_lm_embeddings_are_resized_to_the_tokenizer_keeping_the_pretrained_rows(tiny_hf_dirs: dict[str, Path]):
    for name in ("llama", "qwen2"):  # llama grows by <pad> and <image>; qwen2's padded table shrinks to its tokenizer
        tokenizer = tokenizer_from_pretrained(tiny_hf_dirs[name])
        reference = AutoModelForCausalLM.from_pretrained(tiny_hf_dirs[name], use_safetensors=True)
        old = reference.get_input_embeddings().weight
        lm = HFCausalLM(LanguageModelConfig(pretrained=tiny_hf_dirs[name]), tokenizer.vocab_size)
        new = lm.hf.get_input_embeddings().weight
        assert new.shape[0] == lm.lm_head.weight.shape[0] == tokenizer.vocab_size
        kept = min(len(old), len(new))
        assert torch.equal(new[:kept], old[:kept])
    assert lm.lm_head.weight is lm.hf.get_input_embeddings().weight  # qwen2's head stays tied to its embeddings


@pytest.mark.parametrize("vision, lm", [("clip", "llama"), ("siglip", "qwen2")])
def test_llava_on_hf_towers_decodes_the_same_with_and_without_the_kv_cache(tiny_hf_dirs: dict[str, Path], vision: str, lm: str, pixels: torch.Tensor):
    tokenizer = tokenizer_from_pretrained(tiny_hf_dirs[lm])
    torch.manual_seed(0)
    model = build_llava(llava_config(tiny_hf_dirs, vision, lm), tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id).eval()
    pad, bos, image = tokenizer.pad_id, tokenizer.bos_id, tokenizer.image_id
    prompt = tokenizer.encode("USER: How many shapes are there? ASSISTANT:")
    ids = torch.tensor([[pad, pad, pad, bos, image, *prompt[:-3]], [bos, image, *prompt]])  # left-padded, two lengths
    mask = (ids != pad).long()
    has_image = torch.tensor([True, True])
    # eos -1 never comes: every sample decodes all 8 tokens, and the two paths are compared on all of them
    cached = model.generate(ids, mask, pixels, has_image, max_new_tokens=8, eos_token_id=-1, use_cache=True)
    uncached = model.generate(ids, mask, pixels, has_image, max_new_tokens=8, eos_token_id=-1, use_cache=False)
    assert cached == uncached and [len(c) for c in cached] == [8, 8]


def test_before_block_hooks_see_the_hidden_states_entering_each_decoder_layer(tiny_hf_dirs: dict[str, Path]):
    """What Flamingo's gated cross-attention needs of an LM: a layer run before each block."""
    lm = HFCausalLM(LanguageModelConfig(pretrained=tiny_hf_dirs["llama"]), 302).eval()
    ids = torch.randint(0, 302, (1, 5), generator=torch.Generator().manual_seed(2))
    mask, shift = torch.ones(1, 5, dtype=torch.long), torch.randn(32)
    seen = []

    def before(index: int, hidden: torch.Tensor) -> torch.Tensor:
        seen.append(index)
        return hidden + shift if index == 0 else hidden

    with torch.no_grad():
        embeds = lm.embed(ids)
        hooked, _ = lm.hidden_states(embeds, mask, position_ids_from_mask(mask), before_block=before)
        shifted, _ = lm.hidden_states(embeds + shift, mask, position_ids_from_mask(mask))
        plain, _ = lm.hidden_states(embeds, mask, position_ids_from_mask(mask))  # the hooks were removed
    assert seen == [0, 1]
    assert_close(hooked, shifted, **EXACT)
    assert not torch.allclose(plain, hooked)


def test_a_checkpoint_of_ours_rebuilds_the_model_from_the_configs_alone(tiny_hf_dirs: dict[str, Path], tmp_path: Path, pixels: torch.Tensor):
    """The served model: configs copied from the pretrained directories, our safetensors (with qwen2's
    tied head saved under both names), and no pretrained weights anywhere."""
    tokenizer = tokenizer_from_pretrained(tiny_hf_dirs["qwen2"])
    cfg = llava_config(tiny_hf_dirs, "siglip", "qwen2")
    trained = build_llava(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id).eval()
    with torch.no_grad():
        trained.language_model.lm_head.weight.add_(0.01)  # a change training made, to the tied table
    weights = save_weights(trained, tmp_path / "model.safetensors")
    served_cfg = ModelConfig(
        vision=VisionConfig(pretrained=copy_configs(tiny_hf_dirs["siglip"], tmp_path / "vision")),
        language_model=LanguageModelConfig(pretrained=copy_configs(tiny_hf_dirs["qwen2"], tmp_path / "lm")),
        connector="mlp2x_gelu",
    )
    assert not list((tmp_path / "lm").glob("*.safetensors"))
    served = build_llava(served_cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id, load_pretrained=False).eval()
    served.load_state_dict(load_weights(weights))
    ids = torch.tensor([[tokenizer.bos_id, tokenizer.image_id, *tokenizer.encode("USER: Is there a red circle? ASSISTANT:")]] * 2)
    batch = dict(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels, has_image=torch.tensor([True, False]))
    batch["input_ids"][1, 1] = tokenizer.pad_id  # the second sample has no image
    with torch.no_grad():
        assert_close(served(**batch)["logits"], trained(**batch)["logits"], **EXACT)


def test_flamingo_on_hf_towers_starts_as_the_pretrained_lm_and_decodes_the_same_with_the_kv_cache(tiny_hf_dirs: dict[str, Path]):
    tokenizer = tokenizer_from_pretrained(tiny_hf_dirs["llama"])
    cfg = llava_config(tiny_hf_dirs, "clip", "llama").model_copy(update={"flamingo": FlamingoConfig(num_latents=3, depth=1, heads=2)})
    torch.manual_seed(0)
    model = build_flamingo(cfg, tokenizer.vocab_size, tokenizer.image_id, tokenizer.pad_id).eval()
    assert len(model.gated_cross_attention) == 2  # one before each of the Llama's two layers
    pad, bos, image = tokenizer.pad_id, tokenizer.bos_id, tokenizer.image_id
    prompt = tokenizer.encode("USER: How many shapes are there? ASSISTANT:")
    ids = torch.tensor([[pad, pad, bos, image, *prompt[:-2]], [bos, image, *prompt]])
    mask = (ids != pad).long()
    images = torch.rand(2, 1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    lm = model.language_model
    text_only, _ = lm(lm.embed(ids), mask, position_ids_from_mask(mask))
    torch.testing.assert_close(model(ids, mask, images)["logits"], text_only, **EXACT)  # gates at zero
    with torch.no_grad():
        for name, p in model.gated_cross_attention.named_parameters():
            if name.endswith("gate"):
                p.fill_(1.0)
    cached = model.generate(ids, mask, images, None, max_new_tokens=6, eos_token_id=-1, use_cache=True)
    uncached = model.generate(ids, mask, images, None, max_new_tokens=6, eos_token_id=-1, use_cache=False)
    assert cached == uncached and [len(c) for c in cached] == [6, 6]
