import pytest
import torch

from components.data.errors import DataError
from components.data.label_prompts import LabelPrompts, object_class
from components.data.llava_json import ImageTextDataset, collate_batch, load_llava_json


def test_single_object_scenes_read_as_label_prompts_that_share_labels(built_dataset, built_tokenizer):
    captions = built_dataset / "captions_train.json"
    samples = load_llava_json(captions)
    dataset = ImageTextDataset(captions, built_dataset, built_tokenizer, 32, 48, label_prompts=LabelPrompts(1.0, ("a {}",)))
    items = [dataset[i] for i in range(len(dataset))]
    classes = [object_class(s) for s in samples]
    assert any(classes) and not all(classes)  # both kinds of scene are in the split
    by_label: dict[int, set[str]] = {}
    for item, sample, name in zip(items, samples, classes):
        text = built_tokenizer.decode(item["text_ids"][:-1].tolist())
        if name:
            assert text.strip() == f"a {name}"
        else:  # the caption, cut at max_len
            assert sample["conversations"][1]["value"].startswith(text.strip()) and len(text.strip()) > 10
        by_label.setdefault(int(item["pair_label"]), set()).add(text)
    assert all(len(texts) == 1 for texts in by_label.values())  # a label is one text ...
    assert len(by_label) == len({t for texts in by_label.values() for t in texts})  # ... and a text one label
    repeated = [name for name in set(filter(None, classes)) if classes.count(name) > 1]
    assert repeated  # scenes of one class share its label: the positives UniCL adds
    batch = collate_batch(items[:6], built_tokenizer.pad_id)
    assert batch["pair_labels"].tolist() == [int(item["pair_label"]) for item in items[:6]]


def test_without_prompts_captions_keep_their_pairs(built_dataset, built_tokenizer):
    dataset = ImageTextDataset(built_dataset / "captions_train.json", built_dataset, built_tokenizer, 32, 48)
    assert "pair_label" not in dataset[0] and "pair_labels" not in collate_batch([dataset[0], dataset[1]], built_tokenizer.pad_id)


def test_the_prompt_fraction_is_honoured(built_dataset, built_tokenizer):
    captions = built_dataset / "captions_train.json"
    dataset = ImageTextDataset(captions, built_dataset, built_tokenizer, 32, 48, label_prompts=LabelPrompts(0.5, ("a {}",)))
    samples = load_llava_json(captions)
    single = [i for i, s in enumerate(samples) if object_class(s)]
    torch.manual_seed(0)
    prompt_ids = {i: built_tokenizer.encode(f"a {object_class(samples[i])}") + [built_tokenizer.eos_id] for i in single}
    prompts = [dataset[i]["text_ids"].tolist() == prompt_ids[i] for _ in range(20) for i in single]
    assert 0.35 < sum(prompts) / len(prompts) < 0.65


@pytest.mark.parametrize("fraction, templates", [(0.0, ("a {}",)), (1.5, ("a {}",)), (0.5, ()), (0.5, ("a thing",))])
def test_bad_label_prompts_are_refused(fraction, templates):
    with pytest.raises(DataError, match="label prompts"):
        LabelPrompts(fraction, templates)


def test_object_classes_label_single_object_scenes_and_keep_their_captions(built_dataset, built_tokenizer):
    captions = built_dataset / "captions_train.json"
    samples = load_llava_json(captions)
    dataset = ImageTextDataset(captions, built_dataset, built_tokenizer, 32, 48, object_classes=True)
    plain = ImageTextDataset(captions, built_dataset, built_tokenizer, 32, 48)
    assert dataset.classes == tuple(sorted({object_class(s) for s in samples} - {None}))
    for index, sample in enumerate(samples):
        item, name = dataset[index], object_class(sample)
        assert int(item["object_class"]) == (dataset.classes.index(name) if name else -1)
        assert torch.equal(item["text_ids"], plain[index]["text_ids"])  # the caption, not a prompt
    batch = collate_batch([dataset[0], dataset[1]], built_tokenizer.pad_id)
    assert batch["object_classes"].tolist() == [int(dataset[0]["object_class"]), int(dataset[1]["object_class"])]
