"""Writing a Shapes dataset to disk as PNG images plus LLaVA-format JSON files.

Layout under `out_dir`:

    images/{split}/{split}_{index:06d}.png
    captions_{split}.json   stage-1 image-caption pairs (LLaVA JSON list)
    instruct_{split}.json   stage-2 multi-turn conversations (LLaVA JSON list)
    meta.json               the config, counts per split, vocabulary, question types

The output is byte-identical for the same config: scenes and their text are pure
functions of (seed, split, index), and JSON is written without unordered state.
Files are (over)written in place; files from an earlier, larger run are not removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from components.data.pages_dataset import write_pages
from components.data.shapes_annotations import (
    QUESTION_TYPES,
    caption,
    caption_prompt,
    conversation,
    hard_negative_captions,
)
from components.data.shapes_world import (
    SPLITS,
    Scene,
    ShapeObject,
    ShapesConfig,
    render_scene,
    sample_scene,
    scene_rng,
)
from components.data.text_pages import PagesConfig
from components.data.shapes_videos import VideosConfig
from components.data.videos_dataset import write_videos

IMAGE_TOKEN_PREFIX = "<image>\n"  # LLaVA's marker for where the image goes in turn one
PROGRESS_EVERY = 100  # scenes between two progress callbacks
FORMAT_VERSION = 3  # 3: captions list their objects as grounded `regions`
_TEXT_STREAM = 1  # the scene_rng stream that chooses prompts and questions
_NEGATIVES_STREAM = 2  # the stream that chooses what the hard-negative captions get wrong
_NOISE_STREAM = 3  # the stream that chooses which train captions are replaced by a wrong one

ProgressCallback = Callable[[int, int], None]


def sample_id(split: str, index: int) -> str:
    return f"{split}_{index:06d}"


def image_relpath(split: str, index: int) -> str:
    """The image path as written in the JSON: relative to `out_dir`, '/'-separated."""
    return f"images/{split}/{sample_id(split, index)}.png"


def caption_sample(scene: Scene, split: str, index: int, prompt: str, negatives: list[str]) -> dict:
    """A stage-1 LLaVA sample: one human prompt and the caption as answer, plus captions
    that are wrong in one detail (`hard_negatives`) and each object's box and phrase (`regions`),
    both used by contrastive training."""
    return {
        "id": sample_id(split, index),
        "image": image_relpath(split, index),
        "conversations": [
            {"from": "human", "value": IMAGE_TOKEN_PREFIX + prompt},
            {"from": "gpt", "value": caption(scene)},
        ],
        "hard_negatives": negatives,
        "regions": regions(scene),
        "scene": scene.to_dict(),
    }


def add_caption_noise(sample: dict, probability: float, rng) -> None:
    """With `probability`, make one of the sample's hard negatives its caption (marked caption_noisy);
    the true caption takes that negative's place among the negatives, so they stay one-detail variants."""
    if rng.random() >= probability:
        return
    negatives = sample["hard_negatives"]
    chosen = int(rng.integers(len(negatives)))
    answer = sample["conversations"][1]
    answer["value"], negatives[chosen] = negatives[chosen], answer["value"]
    sample["caption_noisy"] = True


def regions(scene: Scene) -> list[dict]:
    """Each object as a grounded phrase: its box as fractions of the image and 'a {size} {colour} {shape}'."""
    def fractions(obj: ShapeObject) -> list[float]:
        x0, y0, x1, y1 = obj.box
        return [round(x0 / scene.width, 4), round(y0 / scene.height, 4), round(x1 / scene.width, 4), round(y1 / scene.height, 4)]

    return [{"box": fractions(o), "phrase": f"a {o.size} {o.colour} {o.shape}"} for o in scene.objects]


def instruct_sample(scene: Scene, split: str, index: int, config: ShapesConfig, rng) -> dict:
    """A stage-2 LLaVA sample: a few question-answer turns about the scene."""
    turns = conversation(scene, rng, config.colours, config.shapes)
    messages = []
    for number, turn in enumerate(turns):
        prefix = IMAGE_TOKEN_PREFIX if number == 0 else ""
        messages.append({"from": "human", "value": prefix + turn.question})
        messages.append({"from": "gpt", "value": turn.answer})
    return {
        "id": sample_id(split, index),
        "image": image_relpath(split, index),
        "conversations": messages,
        "question_types": [turn.question_type for turn in turns],
        "scene": scene.to_dict(),
    }


def generate_shapes_dataset(
    config: ShapesConfig,
    out_dir: Path,
    progress: ProgressCallback | None = None,
    pages: PagesConfig | None = None,
    videos: VideosConfig | None = None,
) -> dict:
    """Render every split of `config` into `out_dir`; returns the summary also saved as
    meta.json. `progress(done, total)` is called every PROGRESS_EVERY scenes and at the end.
    `pages`: text pages are written beside the scenes (pages_dataset), seeded by the scenes' seed; `videos`: so
    are videos of moving shapes (videos_dataset)."""
    out_dir = Path(out_dir)
    total = sum(config.split_size(split) for split in SPLITS)
    done = 0
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        image_dir = out_dir / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        captions, instructs = [], []
        for index in range(config.split_size(split)):
            scene = sample_scene(config, split, index)
            render_scene(scene).save(out_dir / image_relpath(split, index), format="PNG")
            text_rng = scene_rng(config, split, index, stream=_TEXT_STREAM)
            negative_rng = scene_rng(config, split, index, stream=_NEGATIVES_STREAM)
            negatives = hard_negative_captions(scene, negative_rng, config.colours, config.shapes)
            sample = caption_sample(scene, split, index, caption_prompt(text_rng), negatives)
            if split == "train" and config.caption_noise > 0:
                add_caption_noise(sample, config.caption_noise, scene_rng(config, split, index, stream=_NOISE_STREAM))
            captions.append(sample)
            instructs.append(instruct_sample(scene, split, index, config, text_rng))
            done += 1
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
                progress(done, total)
        write_json(out_dir / f"captions_{split}.json", captions)
        write_json(out_dir / f"instruct_{split}.json", instructs)
        counts[split] = {
            "scenes": len(captions),
            "caption_samples": len(captions),
            "instruct_samples": len(instructs),
            "instruct_turns": sum(len(s["question_types"]) for s in instructs),
        }
    meta = {
        "format_version": FORMAT_VERSION,
        "config": config.model_dump(mode="json"),
        "counts": counts,
        "colours": list(config.colours),
        "shapes": list(config.shapes),
        "question_types": list(QUESTION_TYPES),
    }
    if pages is not None:
        meta["pages"] = {"config": pages.model_dump(mode="json"), "counts": write_pages(pages, config.seed, out_dir, write_json)}
    if videos is not None:
        meta["videos"] = {"config": videos.model_dump(mode="json"), "counts": write_videos(videos, config.seed, out_dir, write_json)}
    write_json(out_dir / "meta.json", meta)
    return meta


def write_json(path: Path, data: object) -> None:
    # Write to a temporary name first so a crash never leaves a truncated JSON behind.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=None, ensure_ascii=True) + "\n", encoding="utf-8")
    tmp.replace(path)
