"""BLIP-2's stage-1 losses: max-over-queries similarity, hard negatives, and a tiny model that learns."""

import torch

from components.models.blip2 import QFormerPretrainModel
from components.models.config import QFormerConfig, VisionConfig
from components.models.qformer import QFormer
from components.models.vision import VisionTransformer
from components.training.qformer_losses import max_over_queries_similarity, qformer_losses, sample_hard_negatives

VOCAB, PAD, BOS = 40, 0, 1


def test_similarity_is_the_best_query():
    torch.manual_seed(0)
    queries, texts = torch.randn(3, 5, 8), torch.randn(4, 8)
    expected = torch.tensor([[max(float(queries[b, q] @ texts[t]) for q in range(5)) for t in range(4)] for b in range(3)])
    torch.testing.assert_close(max_over_queries_similarity(queries, texts), expected)


def test_hard_negatives_are_never_the_own_pair_and_follow_similarity():
    similarity = torch.tensor([[1.0, 30.0, -30.0], [30.0, 1.0, -10.0], [-30.0, 10.0, 1.0]])
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        texts, images = sample_hard_negatives(similarity, generator)
        assert (texts != torch.arange(3)).all() and (images != torch.arange(3)).all()
        assert texts.tolist() == [1, 0, 1]  # the most similar wrong caption, by far
        assert images.tolist() == [1, 0, 1]  # column-wise: text 0 is most like image 1, ...


def tiny_model() -> QFormerPretrainModel:
    torch.manual_seed(0)
    vision = VisionTransformer(VisionConfig(image_size=16, patch_size=8, dim=16, depth=1, heads=2))
    qformer = QFormer(QFormerConfig(num_queries=4, dim=16, depth=2, heads=2, mlp_ratio=2.0, max_text_len=8), 16, VOCAB, PAD)
    return QFormerPretrainModel(vision, qformer, VOCAB, embed_dim=8, bos_id=BOS)


def test_all_three_losses_fall_on_a_batch_the_model_can_memorise():
    model = tiny_model()
    torch.manual_seed(1)
    pixels = torch.rand(6, 3, 16, 16) * 2 - 1
    ids = torch.randint(3, VOCAB, (6, 5))
    mask = torch.ones_like(ids)
    mask[3:, 4:] = 0
    ids = ids * mask
    optimizer = torch.optim.AdamW([p for n, p in model.named_parameters() if not n.startswith("vision.")], lr=1e-2)
    first = qformer_losses(model, pixels, ids, mask)
    for _ in range(120):
        losses = qformer_losses(model, pixels, ids, mask)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    last = qformer_losses(model, pixels, ids, mask)
    for name in ("itc", "itm", "itg"):
        assert torch.isfinite(first[name]) and last[name] < 0.5 * first[name], (name, first[name], last[name])


def test_caption_generation_does_not_see_the_token_it_predicts():
    """Changing caption token t leaves the ITG prediction of token t unchanged (it is only a target)."""
    model = tiny_model().eval()
    pixels = torch.rand(2, 3, 16, 16)
    ids = torch.randint(3, VOCAB, (2, 5))
    Q = model.qformer.cfg.num_queries
    image = model.image_features(pixels)
    def hidden(text):
        dec = torch.cat([torch.full_like(text[:, :1], BOS), text[:, :-1]], dim=1)
        return model.joint(image, dec, torch.ones_like(dec), "multimodal_causal")[:, Q:]
    changed = ids.clone()
    changed[:, 2] = (ids[:, 2] + 1) % VOCAB
    with torch.no_grad():
        a, b = hidden(ids), hidden(changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])  # positions 0..2 predict tokens 0..2
    assert not torch.allclose(a[:, 3:], b[:, 3:])
