import pytest
import torch

from components.evaluation.retrieval import recall_at_k, rerank, retrieval_metrics
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


def test_rerank_orders_the_top_k_by_the_match_and_keeps_the_rest_below():
    similarity = torch.tensor([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.3, 0.4]])
    def match(queries, candidates):
        return torch.tensor([[0.2, 0.9, 0.5, 0.3], [0.1, 0.6, 0.8, 0.4]])[queries, candidates]

    reranked = rerank(similarity, 3, match)
    assert reranked[0].argsort(descending=True).tolist() == [1, 3, 0, 2]  # the top 3 by match, then the rest
    assert reranked[1].argsort(descending=True).tolist() == [2, 1, 3, 0]


def test_blip_retrieval_logs_the_embeddings_figures_beside_the_reranked_ones(built_dataset, built_tokenizer):
    from components.models.builders import build_blip
    from components.models.config import MedConfig

    torch.manual_seed(0)
    model = build_blip(VisionConfig(image_size=32, patch_size=8, dim=32, depth=1, heads=2), MedConfig(dim=32, depth=1, heads=2, max_text_len=48),
                       built_tokenizer.vocab_size, built_tokenizer.pad_id, 16)
    captions = built_dataset / "captions_test.json"
    reranked, _ = retrieval_metrics(model, built_tokenizer, captions, built_dataset, 32, rerank_k=4)
    plain, _ = retrieval_metrics(model, built_tokenizer, captions, built_dataset, 32, rerank_k=0)
    assert {f"i2t_r{k}_itc" for k in (1, 5, 10)} <= reranked.keys() and "i2t_r1_itc" not in plain
    assert all(reranked[f"{key}_itc"] == plain[key] for key in plain if key != "retrieval_items")
    # re-ranking reorders only within the top 4: recall at 4 and beyond cannot change
    assert reranked["i2t_r5"] == plain["i2t_r5"] and reranked["t2i_r10"] == plain["t2i_r10"]
