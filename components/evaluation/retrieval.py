"""Image-to-text and text-to-image retrieval with a contrastive model: recall at k.

Every test image is a query over all test captions, and every caption a query
over all images. A hit is a retrieved item whose caption is the query's own
caption, word for word: scenes that happen to be described identically (a
single large blue triangle at the centre, say) cannot be told apart by their
text, so either counts.

A model that can also match pairs (BLIP's ITM head, `match_logits`) re-ranks, as
BLIP retrieves: the k candidates the embeddings rank first are ordered by the
match probability, ahead of all others; the embeddings' own figures are logged
beside, suffixed `_itc`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from components.data.llava_json import load_llava_json, resolve_image
from components.data.tokenizer import TextTokenizer
from components.evaluation.embeddings import encode_texts, image_batches, image_embeddings, text_embeddings
from components.evaluation.metric_names import RECALL_AT


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = RECALL_AT) -> dict[int, float]:
    """similarity (Q, C) of queries to candidates; relevant (Q, C) bool. Per k, the fraction of
    queries with a relevant candidate among their k most similar."""
    if similarity.shape != relevant.shape:
        raise ValueError(f"similarity {tuple(similarity.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    order = similarity.argsort(dim=1, descending=True)  # (Q, C)
    ranked = relevant.gather(1, order)  # (Q, C): is the r-th best candidate relevant?
    return {k: ranked[:, :k].any(dim=1).float().mean().item() for k in ks}


def rerank(similarity: torch.Tensor, k: int, match: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """similarity (Q, C) with each query's top k candidates re-scored by match(query ids, candidate ids)
    (both (Q * k,)) -> (Q * k,) scores; those k rank above every other candidate, in the order of their scores."""
    k = min(k, similarity.shape[1])
    top = similarity.topk(k, dim=1).indices  # (Q, k)
    queries = torch.arange(len(similarity)).repeat_interleave(k)
    scores = match(queries, top.flatten()).view(-1, k)  # (Q, k)
    rest = similarity - similarity.max() - 2.0  # every other candidate: below any probability, in its old order
    return rest.scatter(1, top, scores.to(rest.dtype))


def caption_of(sample: dict) -> str:
    """The description a captions file gives its image: the first answer turn."""
    return sample["conversations"][1]["value"]


@torch.no_grad()
def retrieval_metrics(
    model, tokenizer: TextTokenizer, captions_json: Path, image_root: Path, image_size: int, top: int = 5, rerank_k: int = 16
) -> tuple[dict[str, float], list[dict]]:
    """R@1/5/10 both ways over a split's (image, caption) pairs, and per image its `top` captions;
    re-ranked by the model's match head over the first `rerank_k` when it has one (0: never)."""
    model.eval()
    samples = load_llava_json(captions_json)
    captions = [caption_of(s) for s in samples]
    paths = [resolve_image(image_root, s["image"]) for s in samples]
    reranks = rerank_k > 0 and hasattr(model, "match_logits")
    if reranks:  # the tower runs once: its features are what the match head reads, and they pool into the embeddings
        features = torch.cat([model.image_features(pixels) for pixels in image_batches(paths, image_size)])
        images = model.image_embedding(features)
    else:
        images = image_embeddings(model, paths, image_size)
    texts = text_embeddings(model, tokenizer, captions)
    similarity = images @ texts.t()  # (N images, N captions)
    ids = {caption: number for number, caption in enumerate(dict.fromkeys(captions))}
    caption_ids = torch.tensor([ids[c] for c in captions])
    same = caption_ids[:, None] == caption_ids[None, :]  # image i and caption j describe alike
    image_to_text, text_to_image = similarity, similarity.t()
    metrics: dict[str, float] = {}
    if reranks:
        match = _matcher(model, tokenizer, features, captions)
        metrics |= _recalls(image_to_text, text_to_image, same, suffix="_itc")
        image_to_text = rerank(similarity, rerank_k, match)
        text_to_image = rerank(similarity.t(), rerank_k, lambda texts, images: match(images, texts))
    metrics |= _recalls(image_to_text, text_to_image, same)
    metrics["retrieval_items"] = float(len(samples))
    best = image_to_text.topk(min(top, len(captions)), dim=1)
    predictions = [
        {"id": s.get("id"), "image": s["image"], "caption": captions[i],
         "retrieved": [{"caption": captions[j], "score": round(score, 4)} for j, score in zip(best.indices[i].tolist(), best.values[i].tolist())]}
        for i, s in enumerate(samples)
    ]
    return metrics, predictions


def _recalls(image_to_text: torch.Tensor, text_to_image: torch.Tensor, same: torch.Tensor, suffix: str = "") -> dict[str, float]:
    metrics = {f"i2t_r{k}{suffix}": v for k, v in recall_at_k(image_to_text, same).items()}
    return metrics | {f"t2i_r{k}{suffix}": v for k, v in recall_at_k(text_to_image, same.t()).items()}


def _matcher(model, tokenizer: TextTokenizer, features: torch.Tensor, captions: list[str], batch_size: int = 128):
    """match(image ids, caption ids) -> the model's match probability of each pair, from the images' features."""

    def match(image_ids: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
        scores = []
        for start in range(0, len(image_ids), batch_size):
            texts = [captions[j] for j in caption_ids[start : start + batch_size].tolist()]
            logits = model.match_logits(features[image_ids[start : start + batch_size]], *encode_texts(tokenizer, texts, model.max_text_len))
            scores.append(logits.softmax(dim=-1)[:, 1])
        return torch.cat(scores)

    return match
