"""LLaVA-style splicing of several images into one sequence, with KOSMOS-1's image boundaries."""

import pytest
import torch

from components.models.builders import build_llava
from components.models.config import LanguageModelConfig, ResamplerConfig, VisionConfig
from components.models.family import ModelConfig
from components.models.llava import IGNORE_INDEX

VISION = VisionConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=2)
LM = LanguageModelConfig(dim=32, depth=2, heads=2, mlp_hidden=64, max_seq_len=96)
VOCAB, IMAGE, PAD, EOS = 50, 49, 0, 2
QUERIES = 4


def kosmos(boundaries: bool = True):
    torch.manual_seed(0)
    cfg = ModelConfig(
        vision=VISION, language_model=LM, connector="resampler", resampler=ResamplerConfig(num_queries=QUERIES, heads=2),
        image_boundaries=boundaries,
    )
    return build_llava(cfg, VOCAB, IMAGE, PAD).double().eval()


def two_documents():
    """Sample 0: text, image, text, image, text; sample 1: one image, then padding (its second slot is blank)."""
    ids = torch.tensor([[5, IMAGE, 6, 7, IMAGE, 8], [9, IMAGE, 10, PAD, PAD, PAD]])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    labels = torch.tensor([[-100, -100, 6, 7, -100, 8], [-100, -100, 10, -100, -100, -100]])
    pixels = torch.randn(2, 2, 3, 16, 16, dtype=torch.float64)
    return ids, mask, pixels, torch.tensor([True, True]), labels


def test_each_image_is_spliced_at_its_token_between_its_boundaries():
    model = kosmos()
    ids, mask, pixels, has_image, labels = two_documents()
    embeds, new_mask, _, new_labels, image_mask = model.build_inputs(ids, mask, pixels, has_image, labels)
    span = QUERIES + 2  # <image>, the queries, </image>
    text = model.language_model.embed(ids)
    first, second = model.image_features(pixels[0])  # (QUERIES, D) each, in <image> order
    b = model.image_boundaries
    torch.testing.assert_close(embeds[0, 1 : 1 + span], torch.cat([b.begin[None], first, b.end[None]]))
    after = 1 + span + 2  # then tokens 6, 7
    torch.testing.assert_close(embeds[0, 1 + span : after], text[0, 2:4])
    torch.testing.assert_close(embeds[0, after : after + span], torch.cat([b.begin[None], second, b.end[None]]))
    torch.testing.assert_close(embeds[0, after + span], text[0, 5])
    assert new_mask[0].sum() == 6 - 2 + 2 * span and new_mask[1].sum() == 3 - 1 + span
    assert image_mask[0].tolist()[: 1 + span] == [False, False] + [True] * QUERIES + [False]
    assert (new_labels[0, 1 : 1 + span] == IGNORE_INDEX).all()
    assert new_labels[0, 1 + span : after].tolist() == [6, 7] and new_labels[0, after + span] == 8
    torch.testing.assert_close(embeds[1, 1 : 1 + span], torch.cat([b.begin[None], model.image_features(pixels[1, :1])[0], b.end[None]]))


def test_one_image_reads_the_same_as_a_one_image_model():
    model = kosmos(boundaries=False)
    ids, mask, pixels, has_image, labels = two_documents()
    single = ids[1:], mask[1:], labels[1:]
    interleaved = model.build_inputs(single[0], single[1], pixels[1:], has_image[1:], single[2])
    one = model.build_inputs(single[0], single[1], pixels[1:, 0], has_image[1:], single[2])
    for a, b in zip(interleaved, one):
        torch.testing.assert_close(a, b)


def test_more_image_tokens_than_images_is_an_error():
    model = kosmos()
    ids, mask, pixels, has_image, _ = two_documents()
    three = ids.clone()
    three[0, 0] = IMAGE
    with pytest.raises(ValueError, match=r"sample 0: has_image=True needs 1 to 2 <image> token\(s\) \(id 49\), found 3"):
        model.build_inputs(three, mask, pixels, has_image)
    with pytest.raises(ValueError, match=r"sample 1: has_image=False needs exactly 0 <image> token\(s\)"):
        model.build_inputs(ids, mask, pixels, torch.tensor([True, False]))


def test_the_loss_trains_the_boundaries_and_the_resampler():
    model = kosmos().train()
    ids, mask, pixels, has_image, labels = two_documents()
    model(ids, mask, pixels, has_image, labels)["loss"].backward()
    for name in ("image_boundaries", "connector"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_cached_greedy_decoding_over_several_images_matches_uncached():
    model = kosmos()
    ids = torch.tensor([[PAD, 5, IMAGE, 6, IMAGE, 7], [9, IMAGE, 10, IMAGE, 11, 12]])  # left padded
    mask = torch.tensor([[0, 1, 1, 1, 1, 1], [1] * 6])
    pixels = torch.randn(2, 2, 3, 16, 16, dtype=torch.float64)
    cached = model.generate(ids, mask, pixels, torch.tensor([True, True]), max_new_tokens=6, eos_token_id=EOS)
    uncached = model.generate(ids, mask, pixels, torch.tensor([True, True]), max_new_tokens=6, eos_token_id=EOS, use_cache=False)
    assert cached == uncached and all(len(out) > 0 for out in cached)
    other = pixels.clone()
    other[0, 1] = torch.randn(3, 16, 16, dtype=torch.float64)  # the second image matters to what is said
    logits = model(ids, mask, pixels, torch.tensor([True, True]))["logits"]
    assert not torch.allclose(logits[0, -1], model(ids, mask, other, torch.tensor([True, True]))["logits"][0, -1])
