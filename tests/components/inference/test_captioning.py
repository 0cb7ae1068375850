import pytest
import torch

from components.inference.captioning import match_probability, write_captions
from components.models.builders import build_blip
from components.models.config import MedConfig, VisionConfig

VOCAB, PAD, EOS = 40, 0, 2


def tiny_blip():
    torch.manual_seed(0)
    model = build_blip(VisionConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2), MedConfig(dim=32, depth=2, heads=2, max_text_len=12), VOCAB, PAD, 16)
    return model.eval()


def test_greedy_captions_are_what_the_decoder_predicts_with_teacher_forcing():
    model = tiny_blip()
    pixels = torch.randn(3, 3, 32, 32)
    captions = write_captions(model, pixels, EOS, PAD, max_tokens=8)
    assert all(len(c) <= 8 and EOS not in c and PAD not in c for c in captions)
    for b, caption in enumerate(captions):
        if not caption:
            continue
        ids = torch.tensor([caption])
        logits = model.caption_logits(model.image_features(pixels[b : b + 1]), ids, torch.ones_like(ids))
        assert logits[0].argmax(-1).tolist() == caption  # each token was the argmax after the ones before it


def test_a_vanishing_nucleus_is_greedy_and_a_full_one_samples():
    model = tiny_blip()
    pixels = torch.randn(4, 3, 32, 32)
    greedy = write_captions(model, pixels, EOS, PAD, max_tokens=6)
    assert write_captions(model, pixels, EOS, PAD, 6, top_p=1e-9, generator=torch.Generator().manual_seed(0)) == greedy
    draws = {str(write_captions(model, pixels, EOS, PAD, 6, top_p=1.0, generator=torch.Generator().manual_seed(s))) for s in range(5)}
    assert len(draws) > 1  # an untrained decoder's distribution is broad: the draws differ


def test_match_probability_is_the_itm_heads_softmax():
    model = tiny_blip()
    pixels, ids = torch.randn(2, 3, 32, 32), torch.randint(3, VOCAB, (2, 5))
    mask = torch.ones_like(ids)
    p = match_probability(model, pixels, ids, mask)
    expected = model.match_logits(model.image_features(pixels), ids, mask).softmax(-1)[:, 1]
    torch.testing.assert_close(p, expected)
    assert ((0 < p) & (p < 1)).all()


def test_bad_sampling_settings_are_refused():
    model = tiny_blip()
    with pytest.raises(ValueError, match="top_p=1.5 must be in"):
        write_captions(model, torch.randn(1, 3, 32, 32), EOS, PAD, 4, top_p=1.5)
    with pytest.raises(ValueError, match="max_tokens=13 must be in 1..12"):
        write_captions(model, torch.randn(1, 3, 32, 32), EOS, PAD, 13)
