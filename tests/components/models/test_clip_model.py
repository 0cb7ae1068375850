import math

import torch

from components.models.builders import build_clip
from components.models.config import TextEncoderConfig, VisionConfig

VISION = VisionConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=2)
TEXT = TextEncoderConfig(dim=32, depth=2, heads=2, max_len=16)
PAD = 0


def make_clip():
    torch.manual_seed(0)
    return build_clip(VISION, TEXT, vocab_size=50, pad_id=PAD, embed_dim=24).eval()


def test_embeddings_unit_norm_and_initial_scale():
    clip = make_clip()
    ids = torch.randint(1, 50, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    img, txt, scale = clip(torch.randn(3, 3, 16, 16), ids, mask)
    assert img.shape == txt.shape == (3, 24)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(3))
    assert math.isclose(scale.item(), 1 / 0.07, rel_tol=1e-5)


def test_scale_clamps_at_100():
    clip = make_clip()
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)
    _, _, scale = clip(torch.randn(1, 3, 16, 16), torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3))
    assert scale.item() == 100.0


def test_text_padding_does_not_change_embedding():
    clip = make_clip()
    ids = torch.randint(1, 50, (1, 5))
    padded = torch.cat([ids, torch.full((1, 3), PAD)], 1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    torch.testing.assert_close(clip.encode_text(ids, torch.ones(1, 5)), clip.encode_text(padded, mask))
    other = ids.clone()
    other[0, 2] = (other[0, 2] % 49) + 1
    assert not torch.allclose(clip.encode_text(ids, torch.ones(1, 5)), clip.encode_text(other, torch.ones(1, 5)))


def test_submodule_names():
    names = {name for name, _ in make_clip().named_children()}
    assert names == {"vision", "text", "image_projection", "text_projection"}


def test_patch_embeddings_come_with_the_same_image_embedding():
    clip = make_clip()
    pixels = torch.randn(2, 3, 16, 16)
    image, patches = clip.encode_image_and_patches(pixels)
    assert patches.shape == (2, VISION.num_patches, 24)
    torch.testing.assert_close(image, clip.encode_image(pixels))
    torch.testing.assert_close(patches.norm(dim=-1), torch.ones(2, VISION.num_patches))


def test_a_word_embedding_is_its_tokens_input_embeddings_averaged_and_projected():
    clip = make_clip()
    ids = torch.tensor([[5, 9], [7, PAD]])
    mask = torch.tensor([[1, 1], [1, 0]])
    words = clip.encode_words(ids, mask)
    table = clip.text.token_embed.weight
    expected = torch.nn.functional.normalize(clip.text_projection(torch.stack([(table[5] + table[9]) / 2, table[7]])), dim=-1)
    torch.testing.assert_close(words, expected)


def test_contrastive_objective_adds_the_weighted_region_word_loss():
    from components.training.losses import clip_loss, region_word_loss
    from components.training.objectives import contrastive

    clip = make_clip()
    torch.manual_seed(3)
    positive = torch.zeros(2, VISION.num_patches, 3, dtype=torch.bool)
    positive[0, 5, [0, 1]] = True
    positive[1, 10, 2] = True
    batch = {
        "pixel_values": torch.randn(2, 3, 16, 16),
        "text_ids": torch.randint(1, 50, (2, 6)), "text_mask": torch.ones(2, 6, dtype=torch.long),
        "word_ids": torch.tensor([[11], [12], [13]]), "word_mask": torch.ones(3, 1, dtype=torch.long),
        "region_positive": positive,
    }
    plain, _ = contrastive(clip, batch)
    weighted, metrics = contrastive(clip, batch, region_weight=2.0)
    image, patches = clip.encode_image_and_patches(batch["pixel_values"])
    text = clip.encode_text(batch["text_ids"], batch["text_mask"])
    region = region_word_loss(patches[positive.any(-1)], clip.encode_words(batch["word_ids"], batch["word_mask"]), positive[positive.any(-1)], clip.scale())
    torch.testing.assert_close(plain, clip_loss(image, text, clip.scale()))
    torch.testing.assert_close(weighted, plain + 2.0 * region)
    torch.testing.assert_close(metrics["region_word_loss"], region.detach())
    weighted.backward()
    assert clip.text.token_embed.weight.grad[[11, 12, 13]].abs().sum() > 0  # the words' embeddings train
