from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from components.data.conversation import IGNORE_INDEX
from components.data.errors import DataError
from components.data.llava_json import (
    ImageTextDataset,
    LlavaJsonDataset,
    TextCorpusDataset,
    collate_batch,
    load_image,
    load_llava_json,
    resolve_image,
)
from components.data.tokenizer import TextTokenizer

FOREIGN = [
    {
        "id": "cat-1",
        "image": "coco/sub/cat.jpg",
        "conversations": [
            {"from": "human", "value": "What is on the mat?\n<image>"},
            {"from": "gpt", "value": "A cat."},
            {"from": "human", "value": "What colour is it?"},
            {"from": "gpt", "value": "It is red."},
        ],
        "model": "ignored extra key",
    },
    {
        "id": 17,
        "conversations": [
            {"from": "human", "value": "Say hello."},
            {"from": "gpt", "value": "hello"},
        ],
    },
    {
        "id": "red-2",
        "image": "red.png",
        "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image briefly."},
            {"from": "gpt", "value": "a red square"},
        ],
    },
]


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A hand-written LLaVA dataset: a 40x30 JPEG in a subfolder and an 8x8 red PNG."""
    root = tmp_path / "images"
    (root / "coco" / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), (0, 0, 255)).save(root / "coco" / "sub" / "cat.jpg")
    Image.new("RGB", (8, 8), (255, 0, 0)).save(root / "red.png")
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(FOREIGN))
    return path


def test_load_image_scales_to_minus_one_one(foreign: Path) -> None:
    pixels = load_image(foreign.parent / "images" / "red.png", 8)
    assert pixels.shape == (3, 8, 8) and pixels.dtype == torch.float32
    assert torch.equal(pixels[0], torch.ones(8, 8))
    assert torch.equal(pixels[1:], -torch.ones(2, 8, 8))
    resized = load_image(foreign.parent / "images" / "coco" / "sub" / "cat.jpg", 16)
    assert resized.shape == (3, 16, 16)
    assert resized[2].mean() > 0.9 and resized[0].mean() < -0.9  # still blue


def test_load_image_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="image file not found: .*nope.png"):
        load_image(tmp_path / "nope.png", 8)
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(DataError, match="fake.png is not an image"):
        load_image(tmp_path / "fake.png", 8)


def test_llava_dataset_on_a_foreign_file(foreign: Path, tokenizer: TextTokenizer) -> None:
    dataset = LlavaJsonDataset(foreign, foreign.parent / "images", tokenizer, "instruct", 16, 256)
    assert len(dataset) == 3
    multi, text_only, _ = dataset[0], dataset[1], dataset[2]
    assert multi["has_image"].item() is True and multi["pixel_values"].shape == (3, 16, 16)
    assert (multi["input_ids"] == tokenizer.image_id).sum() == 1
    targets = multi["labels"][multi["labels"] != IGNORE_INDEX].tolist()
    eos = tokenizer.eos_id
    assert targets == tokenizer.encode(" A cat.") + [eos] + tokenizer.encode(" It is red.") + [eos]
    assert text_only["has_image"].item() is False
    assert torch.equal(text_only["pixel_values"], torch.zeros(3, 16, 16))
    assert tokenizer.image_id not in text_only["input_ids"].tolist()
    assert multi["input_ids"].dtype == multi["labels"].dtype == torch.long


def test_collate_pads_and_masks(foreign: Path, tokenizer: TextTokenizer) -> None:
    dataset = LlavaJsonDataset(foreign, foreign.parent / "images", tokenizer, "instruct", 16, 256)
    items = [dataset[i] for i in range(3)]
    lengths = [len(item["input_ids"]) for item in items]
    batch = collate_batch(items, pad_id=tokenizer.pad_id)
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert batch["pixel_values"].shape == (3, 3, 16, 16)
    assert batch["has_image"].tolist() == [True, False, True]
    short = lengths.index(min(lengths))
    assert batch["input_ids"][short, min(lengths):].eq(tokenizer.pad_id).all()
    assert batch["labels"][short, min(lengths):].eq(IGNORE_INDEX).all()
    assert torch.equal(batch["input_ids"][short, : min(lengths)], items[short]["input_ids"])
    with pytest.raises(DataError, match="empty"):
        collate_batch([], pad_id=0)


def test_image_text_dataset(shapes_dir: Path, tokenizer: TextTokenizer) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    dataset = ImageTextDataset(shapes_dir / "captions_val.json", shapes_dir, tokenizer, 32, 64)
    item = dataset[0]
    expected = tokenizer.encode(captions[0]["conversations"][1]["value"]) + [tokenizer.eos_id]
    assert item["text_ids"].tolist() == expected
    assert item["pixel_values"].shape == (3, 32, 32)
    short = ImageTextDataset(shapes_dir / "captions_val.json", shapes_dir, tokenizer, 32, 5)[0]
    assert short["text_ids"].tolist() == expected[:4] + [tokenizer.eos_id]
    batch = collate_batch([dataset[0], dataset[1], short], pad_id=tokenizer.pad_id)
    assert batch["text_mask"][2].tolist()[:6] == [1, 1, 1, 1, 1, 0]
    assert batch["text_ids"][2, 5:].eq(tokenizer.pad_id).all()


def test_image_text_dataset_draws_one_of_the_hard_negatives(shapes_dir: Path, tokenizer: TextTokenizer) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    dataset = ImageTextDataset(shapes_dir / "captions_val.json", shapes_dir, tokenizer, 32, 64)
    allowed = {tuple(tokenizer.encode(n) + [tokenizer.eos_id]) for n in captions[0]["hard_negatives"]}
    torch.manual_seed(0)
    drawn = {tuple(dataset[0]["negative_ids"].tolist()) for _ in range(40)}
    assert drawn <= allowed and len(drawn) > 1
    batch = collate_batch([dataset[0], dataset[1]], pad_id=tokenizer.pad_id)
    assert batch["negative_ids"].shape == batch["negative_mask"].shape


def test_image_text_dataset_without_hard_negatives(tmp_path: Path, shapes_dir: Path, tokenizer: TextTokenizer) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{k: v for k, v in s.items() if k != "hard_negatives"} for s in captions]))
    item = ImageTextDataset(plain, shapes_dir, tokenizer, 32, 64)[0]
    assert "negative_ids" not in item


def test_image_text_dataset_needs_images(foreign: Path, tokenizer: TextTokenizer) -> None:
    with pytest.raises(DataError, match="sample 1 has no 'image'"):
        ImageTextDataset(foreign, foreign.parent / "images", tokenizer, 16, 32)


def test_text_corpus_dataset(foreign: Path, tokenizer: TextTokenizer) -> None:
    dataset = TextCorpusDataset(foreign, tokenizer, "instruct", max_len=256)
    assert len(dataset) == 4  # one item per question-answer turn
    first = dataset[0]
    expected = (
        [tokenizer.bos_id]
        + tokenizer.encode("USER: What is on the mat? ASSISTANT:")
        + tokenizer.encode(" A cat.")
        + [tokenizer.eos_id]
    )
    assert first["input_ids"].tolist() == expected
    assert first["labels"].tolist() == [IGNORE_INDEX] + expected[1:]
    assert all(tokenizer.image_id not in dataset[i]["input_ids"].tolist() for i in range(4))
    captions = TextCorpusDataset(foreign, tokenizer, "caption", max_len=4)
    assert len(captions) == 3 and len(captions[0]["input_ids"]) == 4


def test_described_corpus_puts_each_conversation_after_its_images_caption(shapes_dir: Path, tokenizer: TextTokenizer) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    conversations = json.loads((shapes_dir / "instruct_val.json").read_text())
    described = TextCorpusDataset(shapes_dir / "instruct_val.json", tokenizer, "described", 512, shapes_dir / "captions_val.json")
    assert len(described) == len(conversations)
    caption = captions[3]["conversations"][1]["value"]
    assert captions[3]["image"] == conversations[3]["image"]
    turns = [(t["value"].replace("<image>\n", ""), a["value"]) for t, a in zip(conversations[3]["conversations"][::2], conversations[3]["conversations"][1::2])]
    expected = [tokenizer.bos_id] + tokenizer.encode(" " + caption) + [tokenizer.eos_id]
    for question, answer in turns:
        expected += tokenizer.encode(f"USER: {question} ASSISTANT:") + tokenizer.encode(" " + answer) + [tokenizer.eos_id]
    assert described[3]["input_ids"].tolist() == expected
    with pytest.raises(DataError, match="mode 'described' needs captions_json"):
        TextCorpusDataset(shapes_dir / "instruct_val.json", tokenizer, "described", 512)


def test_resolve_image_accepts_subfolders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.png").touch()
    assert resolve_image(tmp_path, "a/b/x.png") == (tmp_path / "a" / "b" / "x.png").resolve()


@pytest.mark.parametrize(
    ("rel", "fragment"), [("../x.png", "contains '..'"), ("a/../../x.png", "contains '..'"),
                          ("/etc/passwd", "is absolute")]
)
def test_resolve_image_refuses_escapes(tmp_path: Path, rel: str, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment) as info:
        resolve_image(tmp_path / "root", rel, source="data.json sample 4")
    assert "data.json sample 4" in str(info.value) and rel in str(info.value)


def test_resolve_image_refuses_symlinks_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.png").touch()
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(DataError, match="'link.png' resolves to .*secret.png, outside"):
        resolve_image(root, "link.png")


def test_dataset_refuses_escaping_paths_at_construction(
    tmp_path: Path, tokenizer: TextTokenizer
) -> None:
    path = tmp_path / "evil.json"
    path.write_text(json.dumps([{**FOREIGN[2]}, {**FOREIGN[2], "image": "../x.png"}]))
    with pytest.raises(DataError, match=r"evil.json sample 1: image path '../x.png'"):
        LlavaJsonDataset(path, tmp_path, tokenizer, "instruct", 16, 64)


TURN = {"from": "human", "value": "q"}
ANSWER = {"from": "gpt", "value": "a"}


@pytest.mark.parametrize(
    ("bad_sample", "fragment"),
    [
        ("just a string", "sample 1 is a str"),
        ({"id": "x"}, "sample 1 \\(id 'x'\\): field 'conversations' is None"),
        ({"conversations": []}, "sample 1: field 'conversations' is \\[\\]"),
        ({"conversations": [TURN]}, "has 1 turns"),
        ({"conversations": [ANSWER, TURN]}, "'conversations\\[0\\].from' is 'gpt'"),
        ({"conversations": [TURN, {"from": "assistant", "value": "a"}]},
         "'conversations\\[1\\].from' is 'assistant'; expected 'gpt'"),
        ({"conversations": [TURN, {"from": "gpt", "value": 3}]}, "'conversations\\[1\\].value'"),
        ({"image": 5, "conversations": [TURN, ANSWER]}, "field 'image' is 5"),
        ({"conversations": [TURN, ANSWER], "hard_negatives": "a red square"}, "field 'hard_negatives'"),
        ({"conversations": [TURN, ANSWER], "hard_negatives": ["ok", ""]}, "non-empty caption strings"),
    ],
)
def test_malformed_samples_name_file_sample_and_field(
    tmp_path: Path, bad_sample: object, fragment: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps([{"conversations": [TURN, ANSWER]}, bad_sample]))
    with pytest.raises(DataError, match=fragment) as info:
        load_llava_json(path)
    assert "broken.json: sample 1" in str(info.value)


def test_bad_files_are_data_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"conversations": ')
    with pytest.raises(DataError, match="d.json: not valid JSON"):
        load_llava_json(path)
    path.write_text('{"conversations": []}')
    with pytest.raises(DataError, match="top level is a dict"):
        load_llava_json(path)
    with pytest.raises(DataError, match="LLaVA JSON file not found"):
        load_llava_json(tmp_path / "absent.json")


def test_image_text_dataset_with_regions_marks_each_token_with_its_objects_words(shapes_dir: Path, tokenizer: TextTokenizer) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    dataset = ImageTextDataset(shapes_dir / "captions_val.json", shapes_dir, tokenizer, 32, 64, region_grid=4)
    items = [dataset[0], dataset[1]]
    batch = collate_batch(items, pad_id=tokenizer.pad_id)
    words = [tokenizer.decode(ids[mask.bool()].tolist()).strip() for ids, mask in zip(batch["word_ids"], batch["word_mask"])]
    assert len(set(words)) == len(words)  # each distinct word once in the batch
    positive = batch["region_positive"]  # (B, 16, W)
    assert positive.shape == (2, 16, len(words))
    for b, sample in enumerate(captions[:2]):
        owners = items[b]["region_owner"].tolist()
        for obj_index, region in enumerate(sample["regions"]):
            obj = sample["scene"]["objects"][obj_index]
            assert region["phrase"] == f"a {obj['size']} {obj['colour']} {obj['shape']}"
            tokens = [n for n, o in enumerate(owners) if o == obj_index]
            assert tokens, "every object owns at least the token under its centre"
            for n in tokens:
                assert sorted(w for w, on in zip(words, positive[b, n].tolist()) if on) == sorted([obj["size"], obj["colour"], obj["shape"]])
        for n, owner in enumerate(owners):
            if owner == -1:
                assert not positive[b, n].any()


def test_region_words_need_regions_in_every_caption(tmp_path: Path, shapes_dir: Path, tokenizer: TextTokenizer) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    del captions[2]["regions"]
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(captions))
    assert "region_owner" not in ImageTextDataset(path, shapes_dir, tokenizer, 32, 64)[0]  # not asked for: fine
    with pytest.raises(DataError, match=r"sample 2 has no 'regions'"):
        ImageTextDataset(path, shapes_dir, tokenizer, 32, 64, region_grid=4)


def test_load_llava_json_refuses_a_bad_region(tmp_path: Path, shapes_dir: Path) -> None:
    captions = json.loads((shapes_dir / "captions_val.json").read_text())
    captions[1]["regions"][0]["box"] = [0.9, 0.1, 0.2, 0.3]
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(captions))
    with pytest.raises(DataError, match=r"sample 1.*regions\[0\]\.box"):
        load_llava_json(path)
