"""Image-to-text and text-to-image retrieval with a contrastive model: recall at k.

Every test image is a query over all test captions, and every caption a query
over all images. A hit is a retrieved item whose caption is the query's own
caption, word for word: scenes that happen to be described identically (a
single large blue triangle at the centre, say) cannot be told apart by their
text, so either counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from components.data.llava_json import load_llava_json, resolve_image
from components.data.tokenizer import TextTokenizer
from components.evaluation.embeddings import image_embeddings, text_embeddings
from components.evaluation.metric_names import RECALL_AT


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = RECALL_AT) -> dict[int, float]:
    """similarity (Q, C) of queries to candidates; relevant (Q, C) bool. Per k, the fraction of
    queries with a relevant candidate among their k most similar."""
    if similarity.shape != relevant.shape:
        raise ValueError(f"similarity {tuple(similarity.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    order = similarity.argsort(dim=1, descending=True)  # (Q, C)
    ranked = relevant.gather(1, order)  # (Q, C): is the r-th best candidate relevant?
    return {k: ranked[:, :k].any(dim=1).float().mean().item() for k in ks}


def caption_of(sample: dict) -> str:
    """The description a captions file gives its image: the first answer turn."""
    return sample["conversations"][1]["value"]


@torch.no_grad()
def retrieval_metrics(
    model, tokenizer: TextTokenizer, captions_json: Path, image_root: Path, image_size: int, top: int = 5
) -> tuple[dict[str, float], list[dict]]:
    """R@1/5/10 both ways over a split's (image, caption) pairs, and per image its `top` captions."""
    model.eval()
    samples = load_llava_json(captions_json)
    captions = [caption_of(s) for s in samples]
    images = image_embeddings(model, [resolve_image(image_root, s["image"]) for s in samples], image_size)
    texts = text_embeddings(model, tokenizer, captions)
    similarity = images @ texts.t()  # (N images, N captions)
    ids = {caption: number for number, caption in enumerate(dict.fromkeys(captions))}
    caption_ids = torch.tensor([ids[c] for c in captions])
    same = caption_ids[:, None] == caption_ids[None, :]  # image i and caption j describe alike
    metrics = {f"i2t_r{k}": v for k, v in recall_at_k(similarity, same).items()}
    metrics |= {f"t2i_r{k}": v for k, v in recall_at_k(similarity.t(), same.t()).items()}
    metrics["retrieval_items"] = float(len(samples))
    best = similarity.topk(min(top, len(captions)), dim=1)
    predictions = [
        {"id": s.get("id"), "image": s["image"], "caption": captions[i],
         "retrieved": [{"caption": captions[j], "score": round(score, 4)} for j, score in zip(best.indices[i].tolist(), best.values[i].tolist())]}
        for i, s in enumerate(samples)
    ]
    return metrics, predictions
