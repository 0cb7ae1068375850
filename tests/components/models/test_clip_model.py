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
