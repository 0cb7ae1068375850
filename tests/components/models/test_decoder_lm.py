import pytest
import torch

from components.models.builders import build_language_model
from components.models.config import LanguageModelConfig
from components.models.language_model import position_ids_from_mask

CFG = LanguageModelConfig(dim=32, depth=2, heads=2, mlp_hidden=64, max_seq_len=64)
VOCAB = 50


@pytest.fixture
def lm():
    torch.manual_seed(0)
    return build_language_model(CFG, VOCAB).double().eval()


def run(lm, ids, mask):
    logits, _ = lm(lm.embed(ids), mask, position_ids_from_mask(mask))
    return logits


def test_position_ids_from_mask():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 1, 2, 2, 2], [0, 0, 0, 1, 2]]


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_matches_unpadded(lm, side):
    lengths = [7, 4, 2]
    seqs = [torch.randint(1, VOCAB, (n,)) for n in lengths]
    T = max(lengths)
    ids = torch.zeros(3, T, dtype=torch.long)
    mask = torch.zeros(3, T, dtype=torch.long)
    for b, s in enumerate(seqs):
        span = slice(0, len(s)) if side == "right" else slice(T - len(s), T)
        ids[b, span], mask[b, span] = s, 1
    batch = run(lm, ids, mask)
    assert torch.isfinite(batch).all()
    for b, s in enumerate(seqs):
        alone = run(lm, s[None], torch.ones(1, len(s), dtype=torch.long))[0]
        torch.testing.assert_close(batch[b][mask[b].bool()], alone)


def test_causality(lm):
    ids = torch.randint(1, VOCAB, (1, 8))
    other = ids.clone()
    other[0, 5] = (other[0, 5] % (VOCAB - 1)) + 1
    mask = torch.ones(1, 8, dtype=torch.long)
    a, b = run(lm, ids, mask), run(lm, other, mask)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_kv_cache_matches_full_pass_with_left_padding(lm):
    ids = torch.randint(1, VOCAB, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :3] = 0
    pos = position_ids_from_mask(mask)
    full, _ = lm(lm.embed(ids), mask, pos)
    logits, cache = lm(lm.embed(ids[:, :6]), mask[:, :6], pos[:, :6], use_cache=True)
    assert len(cache) == CFG.depth and cache[0][0].shape == (2, 2, 6, 16)
    steps = [logits]
    for t in range(6, 9):
        logits, cache = lm(lm.embed(ids[:, t : t + 1]), mask[:, : t + 1], pos[:, t : t + 1], cache, True)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1)[mask.bool()], full[mask.bool()])


def test_no_cache_returned_without_use_cache_and_shape_errors(lm):
    ids = torch.randint(1, VOCAB, (1, 4))
    mask = torch.ones(1, 4)
    logits, present = lm(lm.embed(ids), mask, position_ids_from_mask(mask))
    assert logits.shape == (1, 4, VOCAB) and present is None
    with pytest.raises(ValueError, match="attention_mask must cover"):
        lm(lm.embed(ids), torch.ones(1, 3), position_ids_from_mask(mask))


def test_lm_head_untied(lm):
    assert lm.lm_head.weight.data_ptr() != lm.embed_tokens.weight.data_ptr()
