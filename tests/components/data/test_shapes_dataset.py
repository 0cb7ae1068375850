from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.shapes_annotations import QUESTION_TYPES, caption
from components.data.shapes_dataset import generate_shapes_dataset
from components.data.shapes_world import Scene, ShapesConfig, render_scene, sample_scene

SMALL = ShapesConfig(seed=3, train=12, val=3, test=4)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_two_generations_are_byte_identical(tmp_path: Path) -> None:
    generate_shapes_dataset(SMALL, tmp_path / "a")
    generate_shapes_dataset(SMALL, tmp_path / "b")
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(first) == 12 + 3 + 4 + 7  # images, 6 JSON lists, meta.json
    assert first == second


def test_different_seeds_give_different_data(tmp_path: Path) -> None:
    generate_shapes_dataset(SMALL, tmp_path / "a")
    generate_shapes_dataset(SMALL.model_copy(update={"seed": 4}), tmp_path / "b")
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert first.keys() == second.keys()
    assert first["captions_train.json"] != second["captions_train.json"]
    assert first["images/train/train_000000.png"] != second["images/train/train_000000.png"]


def test_layout_and_sample_format(shapes_dir: Path, tiny_shapes_config: ShapesConfig) -> None:
    for split in ("train", "val", "test"):
        count = tiny_shapes_config.split_size(split)
        assert len(list((shapes_dir / "images" / split).glob("*.png"))) == count
        captions = json.loads((shapes_dir / f"captions_{split}.json").read_text())
        instructs = json.loads((shapes_dir / f"instruct_{split}.json").read_text())
        assert len(captions) == len(instructs) == count
        assert captions[1]["id"] == f"{split}_000001"
        assert captions[1]["image"] == f"images/{split}/{split}_000001.png"
        for sample in captions:
            turns = sample["conversations"]
            assert [t["from"] for t in turns] == ["human", "gpt"]
            assert turns[0]["value"].startswith("<image>\n")
            assert turns[1]["value"] == caption(Scene.from_dict(sample["scene"]))
        for sample in instructs:
            turns = sample["conversations"]
            humans = turns[0::2]
            assert [t["from"] for t in turns] == ["human", "gpt"] * len(humans)
            assert humans[0]["value"].startswith("<image>\n")
            assert all("<image>" not in t["value"] for t in turns[1:])
            assert len(sample["question_types"]) == len(humans)
            assert set(sample["question_types"]) <= set(QUESTION_TYPES)
            assert set(sample) == {"id", "image", "conversations", "question_types", "scene"}


def test_first_sample_text_is_exactly_llava_json(shapes_dir: Path) -> None:
    text = (shapes_dir / "captions_train.json").read_text()
    sample = json.loads(text)[0]
    expected_start = json.dumps(
        {"id": "train_000000", "image": "images/train/train_000000.png",
         "conversations": sample["conversations"]}
    )[:-1]
    assert text.startswith("[" + expected_start)


def test_scenes_and_images_can_be_regenerated_alone(
    shapes_dir: Path, tiny_shapes_config: ShapesConfig
) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    for index in (0, 5):
        scene = sample_scene(tiny_shapes_config, "val", index)
        assert captions[index]["scene"] == scene.to_dict()
        stored = np.asarray(Image.open(shapes_dir / captions[index]["image"]))
        assert stored.shape == (64, 64, 3)
        assert (stored == np.asarray(render_scene(scene))).all()


def test_meta_and_summary(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    config = ShapesConfig(seed=1, train=150, val=30, test=30)
    summary = generate_shapes_dataset(config, tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(100, 210), (200, 210), (210, 210)]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta == summary
    assert ShapesConfig(**meta["config"]) == config
    assert meta["counts"]["train"]["scenes"] == 150
    assert meta["counts"]["test"]["instruct_samples"] == 30
    instructs = json.loads((tmp_path / "instruct_val.json").read_text())
    turns = sum(len(s["question_types"]) for s in instructs)
    assert meta["counts"]["val"]["instruct_turns"] == turns
    assert meta["colours"] == list(config.colours) and meta["shapes"] == list(config.shapes)
    assert meta["question_types"] == list(QUESTION_TYPES)


def test_caption_noise_swaps_train_captions_for_a_hard_negative_and_marks_them(tmp_path: Path) -> None:
    config = ShapesConfig(seed=5, image_size=32, train=120, val=6, test=6, caption_noise=0.3)
    generate_shapes_dataset(config, tmp_path / "noisy")
    generate_shapes_dataset(config.model_copy(update={"caption_noise": 0.0}), tmp_path / "clean")
    noisy, clean = (json.loads((tmp_path / d / "captions_train.json").read_text()) for d in ("noisy", "clean"))
    marked = [n.get("caption_noisy", False) for n in noisy]
    assert 0.15 < sum(marked) / len(marked) < 0.45
    for n, c, is_noisy in zip(noisy, clean, marked):
        true, stated = c["conversations"][1]["value"], n["conversations"][1]["value"]
        if is_noisy:  # a one-detail wrong caption, with the true one among the negatives instead
            assert stated in c["hard_negatives"] and true in n["hard_negatives"] and stated != true
        else:
            assert n == c
        assert sorted([stated, *n["hard_negatives"]]) == sorted([true, *c["hard_negatives"]])
    for split in ("val", "test"):  # evaluation data stays true
        assert (tmp_path / "noisy" / f"captions_{split}.json").read_text() == (tmp_path / "clean" / f"captions_{split}.json").read_text()
