"""After a stage, exactly the parameters of its freeze plan changed; all others are bit-identical."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from components.training.checkpoints import load_weights
from components.training.config import OptimizerConfig
from components.training.freeze import FreezePlanError, apply_freeze_plan, in_group
from components.training.stage_data import build_dataloader, build_stage_dataset
from components.training.stage_models import build_stage_model
from components.training.train_stage import train_stage

PLANS = [
    ("contrastive", ["vision", "text", "image_projection", "text_projection", "logit_scale"]),
    ("contrastive", ["text", "text_projection"]),
    ("language_modeling", ["language_model"]),
    ("llava_pretrain", ["connector"]),
    ("llava_instruct", ["connector", "language_model"]),
    ("llava_instruct", ["language_model.blocks.1"]),
    ("qformer_pretrain", ["qformer", "image_projection", "text_projection", "itm_head", "lm_head", "logit_scale"]),
]


@pytest.mark.parametrize(("objective", "trainable"), PLANS)
def test_stage_changes_exactly_its_trainable_parameters(objective, trainable, built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    torch.manual_seed(0)
    model = build_stage_model(objective, tiny_model_config, built_tokenizer)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    data = build_stage_dataset(objective, built_dataset, built_tokenizer, 32, 64)
    loader = build_dataloader(data, 8, built_tokenizer.pad_id, seed=0)
    result = train_stage(
        model, objective, trainable, OptimizerConfig(lr=1e-2, weight_decay=0.1), 3, loader, tmp_path / "w.safetensors",
        progress_bar=False,
    )
    saved = load_weights(result.weights)
    assert saved.keys() == before.keys()
    for name, old in before.items():
        trains = any(in_group(name, group) for group in trainable)
        if trains:
            assert not torch.equal(saved[name], old), f"{name} is in the freeze plan {trainable} but did not change"
        else:
            assert torch.equal(saved[name], old), f"{name} is frozen by {trainable} but changed"
    assert result.steps == 3
    assert result.freeze.trainable_count > 0 and result.freeze.frozen_count >= 0


def test_region_word_alignment_trains_only_the_planned_parts_and_moves_the_tower(built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    """With the text tower frozen, the word embeddings the patches are pulled to stay put; the tower moves."""
    torch.manual_seed(0)
    model = build_stage_model("contrastive", tiny_model_config, built_tokenizer)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    grid = tiny_model_config.vision.grid
    data = build_stage_dataset("contrastive", built_dataset, built_tokenizer, 32, 64, region_grid=grid)
    assert data[0]["region_owner"].shape == (grid * grid,)
    loader = build_dataloader(data, 8, built_tokenizer.pad_id, seed=0)
    trainable = ["vision", "image_projection"]
    result = train_stage(model, "contrastive", trainable, OptimizerConfig(lr=1e-2), 3, loader, tmp_path / "w.safetensors",
                         progress_bar=False, region_weight=2.0)
    saved = load_weights(result.weights)
    for name, old in before.items():
        assert torch.equal(saved[name], old) != any(in_group(name, group) for group in trainable), name
    with pytest.raises(ValueError, match="region_grid is for the contrastive objective"):
        build_stage_dataset("llava_pretrain", built_dataset, built_tokenizer, 32, 64, region_grid=grid)


def test_the_described_corpus_adds_each_conversation_after_its_caption(built_dataset, built_tokenizer):
    turns = build_stage_dataset("language_modeling", built_dataset, built_tokenizer, 32, 256)
    described = build_stage_dataset("language_modeling", built_dataset, built_tokenizer, 32, 256, text_corpus="described")
    conversations = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 256)
    assert len(described) == len(turns) + len(conversations)
    with pytest.raises(ValueError, match="text_corpus is for the language_modeling objective"):
        build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 64, text_corpus="described")


def test_unknown_group_is_refused_with_the_parts_listed(built_tokenizer, tiny_model_config):
    model = build_stage_model("llava_instruct", tiny_model_config, built_tokenizer)
    with pytest.raises(FreezePlanError, match=r"'projector'.*connector, language_model, vision"):
        apply_freeze_plan(model, ["projector"])


def test_group_prefix_stops_at_module_boundaries(built_tokenizer, tiny_model_config):
    model = build_stage_model("llava_instruct", tiny_model_config, built_tokenizer)
    report = apply_freeze_plan(model, ["language_model.blocks.1"])
    assert all(name.startswith("language_model.blocks.1.") for name in report.trainable)
    assert not any(name.startswith("language_model.blocks.10") for name in report.trainable)
    assert {p.requires_grad for n, p in model.named_parameters() if n.startswith("vision.")} == {False}


def test_length_grouped_loader_pads_less_and_serves_every_conversation(built_dataset, built_tokenizer):
    data = build_stage_dataset("llava_instruct", built_dataset, built_tokenizer, 32, 160)
    grouped = list(build_dataloader(data, 4, built_tokenizer.pad_id, seed=0, group_by_length=True))
    plain = list(build_dataloader(data, 4, built_tokenizer.pad_id, seed=0))
    assert sum(b["input_ids"].numel() for b in grouped) < sum(b["input_ids"].numel() for b in plain)
    assert sum(len(b["input_ids"]) for b in grouped) == sum(len(b["input_ids"]) for b in plain)
    text_only = build_stage_dataset("language_modeling", built_dataset, built_tokenizer, 32, 160)
    with pytest.raises(ValueError, match="group_by_length needs a dataset with length_estimates"):
        build_dataloader(text_only, 4, built_tokenizer.pad_id, seed=0, group_by_length=True)


def test_blip2_generation_stage_takes_the_pretrained_qformer_and_trains_only_the_projection(
    built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path
):
    """BLIP-2 stage 2: the Q-Former trained alone (qformer.*) becomes connector.qformer.*, frozen; the linear layer trains."""
    from components.training.checkpoints import init_part, save_weights

    torch.manual_seed(0)
    stage1 = build_stage_model("qformer_pretrain", tiny_model_config, built_tokenizer)
    save_weights(stage1, tmp_path / "qformer.safetensors")
    config = tiny_model_config.model_copy(update={"connector": "qformer"})
    model = build_stage_model("llava_pretrain", config, built_tokenizer)
    copied = init_part(model, "connector.qformer", load_weights(tmp_path / "qformer.safetensors"), "qformer")
    assert copied == len([n for n in stage1.state_dict() if n.startswith("qformer.")])
    for name, tensor in stage1.qformer.state_dict().items():
        assert torch.equal(model.connector.qformer.state_dict()[name], tensor)
    data = build_stage_dataset("llava_pretrain", built_dataset, built_tokenizer, 32, 64)
    before = {n: t.clone() for n, t in model.state_dict().items()}
    result = train_stage(model, "llava_pretrain", ["connector.proj"], OptimizerConfig(lr=1e-2), 2,
                         build_dataloader(data, 4, built_tokenizer.pad_id, seed=0), tmp_path / "s2.safetensors", progress_bar=False)
    saved = load_weights(result.weights)
    changed = {n for n, t in before.items() if not torch.equal(saved[n], t)}
    assert changed == {"connector.proj.weight", "connector.proj.bias"}
    pixels = torch.zeros(1, 3, 32, 32)
    assert model.image_features(pixels).shape == (1, config.qformer.num_queries, config.language_model.dim)
