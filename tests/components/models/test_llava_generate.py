import pytest
import torch

from components.models.builders import build_llava
from components.models.config import LanguageModelConfig, VisionConfig
from components.models.family import ModelConfig

VISION = VisionConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=2)
LM = LanguageModelConfig(dim=32, depth=2, heads=2, mlp_hidden=64, max_seq_len=64)
VOCAB, IMAGE, PAD = 50, 49, 0
NO_EOS = -1  # never produced by argmax: every sample runs to max_new_tokens


@pytest.fixture
def model():
    torch.manual_seed(0)
    llava = build_llava(ModelConfig(vision=VISION, language_model=LM, connector="mlp2x_gelu"), VOCAB, IMAGE, PAD).double().eval()
    # The 0.02 init gives near-uniform attention and logits, so positions and padding
    # barely matter; larger weights make greedy picks sensitive to both.
    with torch.no_grad():
        for name, p in llava.language_model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.mul_(15)
    return llava


def left_padded_prompts():
    prompts = [[IMAGE, 5, 6], [7, IMAGE, 8, 9, 10], [11, 12, IMAGE, 13, 14, 15, 16]]
    T = max(map(len, prompts))
    ids = torch.full((3, T), PAD)
    mask = torch.zeros(3, T, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, T - len(p) :] = torch.tensor(p)
        mask[b, T - len(p) :] = 1
    pixels = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    return ids, mask, pixels, torch.ones(3, dtype=torch.bool), prompts


def test_cached_equals_uncached(model):
    ids, mask, pixels, has_image, _ = left_padded_prompts()
    cached = model.generate(ids, mask, pixels, has_image, max_new_tokens=8, eos_token_id=NO_EOS)
    uncached = model.generate(ids, mask, pixels, has_image, max_new_tokens=8, eos_token_id=NO_EOS, use_cache=False)
    assert cached == uncached
    assert [len(g) for g in cached] == [8, 8, 8]
    assert len({tuple(g) for g in cached}) > 1  # the samples really differ


def test_padding_does_not_change_generation(model):
    ids, mask, pixels, has_image, prompts = left_padded_prompts()
    batched = model.generate(ids, mask, pixels, has_image, max_new_tokens=6, eos_token_id=NO_EOS)
    for b, p in enumerate(prompts):
        alone = model.generate(
            torch.tensor([p]), torch.ones(1, len(p), dtype=torch.long), pixels[b : b + 1],
            has_image[b : b + 1], max_new_tokens=6, eos_token_id=NO_EOS,
        )
        assert alone[0] == batched[b]


def test_stops_at_eos_per_sample(model):
    ids, mask, pixels, has_image, _ = left_padded_prompts()
    free = model.generate(ids, mask, pixels, has_image, max_new_tokens=6, eos_token_id=NO_EOS)
    eos = free[0][2]  # make sample 0's third token the eos
    stopped = model.generate(ids, mask, pixels, has_image, max_new_tokens=6, eos_token_id=eos)
    assert stopped[0] == free[0][:2]
    for b in (1, 2):
        expected = free[b][: free[b].index(eos)] if eos in free[b] else free[b]
        assert stopped[b] == expected


def test_all_done_immediately_and_zero_budget(model):
    ids, mask, pixels, has_image, _ = left_padded_prompts()
    first = model.generate(ids, mask, pixels, has_image, max_new_tokens=1, eos_token_id=NO_EOS)
    assert all(len(g) == 1 for g in first)
    assert model.generate(ids[:1], mask[:1], pixels[:1], has_image[:1], 4, eos_token_id=first[0][0]) == [[]]
    assert model.generate(ids, mask, pixels, has_image, max_new_tokens=0, eos_token_id=NO_EOS) == [[], [], []]
