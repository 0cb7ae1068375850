"""The Flamingo model: a frozen LM that reads images only through gated cross-attention."""

import pytest
import torch

from components.models.builders import build_flamingo
from components.models.config import FlamingoConfig, LanguageModelConfig, VisionConfig
from components.models.family import ModelConfig
from components.models.gated_cross_attention import latest_media_index
from components.models.language_model import position_ids_from_mask

VISION = VisionConfig(image_size=16, patch_size=4, dim=24, depth=2, heads=2)
LM = LanguageModelConfig(dim=32, depth=4, heads=2, mlp_hidden=64, max_seq_len=64)
VOCAB, IMAGE, PAD = 50, 49, 0
NO_EOS = -1


def flamingo(every: int = 1, open_gates: bool = False):
    torch.manual_seed(0)
    cfg = ModelConfig(vision=VISION, language_model=LM, flamingo=FlamingoConfig(num_latents=3, depth=1, cross_attention_every=every))
    model = build_flamingo(cfg, VOCAB, IMAGE, PAD).double().eval()
    if open_gates:  # as after training: the image changes what the LM says
        with torch.no_grad():
            for name, p in model.gated_cross_attention.named_parameters():
                if name.endswith("gate"):
                    p.fill_(1.0)
            for name, p in model.language_model.named_parameters():
                if p.dim() == 2 and "embed" not in name:
                    p.mul_(15)
    return model


def batch():
    ids = torch.tensor([[1, IMAGE, 5, 6, 7, IMAGE, 8, 9], [1, 2, 3, IMAGE, 4, 5, 6, 7]])
    mask = torch.ones_like(ids)
    pixels = torch.randn(2, 2, 3, 16, 16, dtype=torch.float64)  # second sample: its second slot is padding
    return ids, mask, pixels


@pytest.mark.parametrize("every", [1, 2, 3])
def test_gated_blocks_sit_before_every_nth_lm_block(every):
    model = flamingo(every)
    assert len(model.gated_cross_attention) == -(-LM.depth // every)


def test_at_initialisation_the_model_is_the_text_only_lm():
    model = flamingo()
    ids, mask, pixels = batch()
    lm = model.language_model
    text_only, _ = lm(lm.embed(ids), mask, position_ids_from_mask(mask))
    torch.testing.assert_close(model(ids, mask, pixels)["logits"], text_only, rtol=0, atol=0)


def test_text_reads_only_the_latest_image_before_it():
    model = flamingo(open_gates=True)
    ids, mask, pixels = batch()
    x = model.language_model.embed(ids)
    latest = latest_media_index(ids, IMAGE)

    def cross_attended(images):  # what the first gated block makes of the token embeddings
        return model._before_block(model.media(images), latest)(0, x)

    changed = pixels.clone()
    changed[0, 0] = torch.randn(3, 16, 16)  # sample 0's first image
    before, after = cross_attended(pixels), cross_attended(changed)
    # sample 0: token 0 reads no image, tokens 1..4 image 0, tokens 5.. image 1 only
    torch.testing.assert_close(before[0, :1], after[0, :1], rtol=0, atol=0)
    assert not torch.allclose(before[0, 1:5], after[0, 1:5])
    torch.testing.assert_close(before[0, 5:], after[0, 5:], rtol=0, atol=0)
    torch.testing.assert_close(before[1], after[1], rtol=0, atol=0)  # the other sample is untouched


def test_text_before_an_image_does_not_depend_on_it():
    model = flamingo(open_gates=True)
    ids, mask, pixels = batch()
    changed = pixels.clone()
    changed[1, 0] = torch.randn(3, 16, 16)  # sample 1's image, at position 3
    before, after = model(ids, mask, pixels)["logits"], model(ids, mask, changed)["logits"]
    torch.testing.assert_close(before[1, :3], after[1, :3], rtol=0, atol=0)
    assert not torch.allclose(before[1, 3:], after[1, 3:])


def test_padding_image_slots_are_never_read():
    model = flamingo(open_gates=True)
    ids, mask, pixels = batch()
    changed = pixels.clone()
    changed[1, 1] = torch.randn(3, 16, 16)  # sample 1 has one image: slot 1 is padding
    torch.testing.assert_close(model(ids, mask, pixels)["logits"], model(ids, mask, changed)["logits"], rtol=0, atol=0)


def test_cached_generation_equals_uncached_and_reads_the_last_prompt_image():
    model = flamingo(open_gates=True)
    ids = torch.tensor([[PAD, PAD, 1, IMAGE, 5, IMAGE, 6], [1, 2, IMAGE, 3, 4, 5, 6]])
    mask = (ids != PAD).long()
    pixels = torch.randn(2, 2, 3, 16, 16, dtype=torch.float64)
    cached = model.generate(ids, mask, pixels, None, max_new_tokens=6, eos_token_id=NO_EOS)
    uncached = model.generate(ids, mask, pixels, None, max_new_tokens=6, eos_token_id=NO_EOS, use_cache=False)
    assert cached == uncached and all(len(out) == 6 for out in cached)
    # greedy continuation equals the argmax of a full forward over prompt + generated tokens
    full = torch.cat([ids, torch.tensor(cached)], dim=1)
    logits = model(full, torch.cat([mask, torch.ones(2, 6, dtype=torch.long)], dim=1), pixels)["logits"]
    assert logits[:, ids.shape[1] - 1 : -1].argmax(-1).tolist() == cached


def test_more_images_than_slots_is_refused():
    model = flamingo()
    ids = torch.tensor([[1, IMAGE, 2, IMAGE, 3]])
    with pytest.raises(ValueError, match="2 images but only 1 media slots"):
        model(ids, torch.ones_like(ids), torch.randn(1, 1, 3, 16, 16, dtype=torch.float64))


def test_a_flamingo_model_needs_its_config():
    with pytest.raises(ValueError, match="model.flamingo"):
        build_flamingo(ModelConfig(vision=VISION, language_model=LM), VOCAB, IMAGE, PAD)
