import pytest
import torch

from components.evaluation.retrieval import recall_at_k, retrieval_metrics
from components.evaluation.zero_shot import zero_shot_accuracy
from components.models.builders import build_clip
from components.models.config import TextEncoderConfig, VisionConfig


def test_recall_counts_a_query_once_its_match_is_within_the_top_k():
    similarity = torch.tensor([
        [0.9, 0.1, 0.0, 0.2],  # its match (0) ranks first
        [0.8, 0.1, 0.7, 0.6],  # its match (1) ranks last
        [0.0, 0.3, 0.2, 0.1],  # its match (2) ranks second
        [0.1, 0.2, 0.3, 0.4],  # its match (3) ranks first
    ])
    recall = recall_at_k(similarity, torch.eye(4, dtype=torch.bool), ks=(1, 2, 3, 4))
    assert recall == {1: 0.5, 2: 0.75, 3: 0.75, 4: 1.0}


def test_an_identically_described_item_counts_as_a_hit():
    similarity = torch.tensor([[0.2, 0.9], [0.9, 0.2]])  # each image prefers the other's caption
    assert recall_at_k(similarity, torch.eye(2, dtype=torch.bool), ks=(1,)) == {1: 0.0}
    assert recall_at_k(similarity, torch.ones(2, 2, dtype=torch.bool), ks=(1,)) == {1: 1.0}  # the captions are the same


def test_recall_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"similarity \(2, 3\) and relevant \(3, 2\) differ"):
        recall_at_k(torch.zeros(2, 3), torch.zeros(3, 2, dtype=torch.bool))


def test_retrieval_on_a_real_split_with_a_real_model(built_dataset, built_tokenizer):
    torch.manual_seed(0)
    model = build_clip(VisionConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2), TextEncoderConfig(dim=32, depth=1, heads=2),
                       built_tokenizer.vocab_size, built_tokenizer.pad_id, 16)
    metrics, predictions = retrieval_metrics(model, built_tokenizer, built_dataset / "captions_test.json", built_dataset, 32)
    n = int(metrics["retrieval_items"])
    assert n == len(predictions) > 0
    for direction in ("i2t", "t2i"):
        r1, r5, r10 = (metrics[f"{direction}_r{k}"] for k in (1, 5, 10))
        assert 0.0 <= r1 <= r5 <= r10 <= 1.0
    if n <= 10:
        assert metrics["i2t_r10"] == metrics["t2i_r10"] == 1.0  # every caption is within the top 10
    first = predictions[0]
    assert len(first["retrieved"]) == min(5, n)
    scores = [r["score"] for r in first["retrieved"]]
    assert scores == sorted(scores, reverse=True)
    # i2t R@1 is the fraction of images whose best caption is their own (or worded alike)
    assert metrics["i2t_r1"] == pytest.approx(sum(p["retrieved"][0]["caption"] == p["caption"] for p in predictions) / n)
    zero_shot = zero_shot_accuracy(model, built_tokenizer, built_dataset / "captions_test.json", built_dataset, 32, ["a {}"])
    assert not zero_shot or 0.0 <= zero_shot["zero_shot_accuracy"] <= 1.0
