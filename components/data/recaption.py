"""Descriptive re-captioning (Sora's, after DALL-E 3): every training video's short caption replaced by a rich one.

Sora trains on captions written by a descriptive captioning model. In the Shapes world every video carries its own
description (objects, motions, places, canvas), so the describer is the world's own caption writer
(components.data.shapes_videos.descriptive_caption) and each caption it writes is true. The short caption is kept
beside it (`short_caption`), and prompt expansion (components.data.prompt_expansion) bridges the two at inference.
"""

from __future__ import annotations

from components.data.shapes_videos import Video, descriptive_caption


def recaption(samples: list[dict]) -> tuple[list[dict], dict[str, float]]:
    """The samples with `caption` rewritten from each one's `video_description`, and the mean words before and after."""
    out = []
    for sample in samples:
        rich = descriptive_caption(Video.from_dict(sample["video_description"]))
        out.append(sample | {"caption": rich, "short_caption": sample["caption"], "descriptive_caption": rich})
    words = lambda key, rows: sum(len(r[key].split()) for r in rows) / max(len(rows), 1)  # noqa: E731
    return out, {"videos_recaptioned": float(len(out)), "caption_words_before": words("caption", samples), "caption_words_after": words("caption", out)}
