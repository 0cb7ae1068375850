"""LLaVA-1.5's two stages on pretrained HF towers, on a dataset that carries the LM's own tokenizer:
each stage changes exactly the parts its freeze plan names, and every tensor of those parts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from components.data.build import build_shapes_dataset, load_dataset_tokenizer
from components.data.shapes_world import ShapesConfig
from components.data.tokenizer import TextTokenizer
from components.models.config import LanguageModelConfig, VisionConfig
from components.models.family import ModelConfig
from components.training.checkpoints import init_part, load_weights
from components.training.config import OptimizerConfig
from components.training.stage_data import build_dataloader, build_stage_dataset
from components.training.stage_models import build_stage_model
from components.training.train_stage import StageResult, train_stage


def run_stage(model: nn.Module, objective: str, trainable: list[str], data: Path, tokenizer: TextTokenizer, out: Path) -> StageResult:
    dataset = build_stage_dataset(objective, data, tokenizer, image_size=32, max_len=64)
    loader = build_dataloader(dataset, batch_size=4, pad_id=tokenizer.pad_id, seed=0)
    return train_stage(model, objective, trainable, OptimizerConfig(lr=1e-2), 2, loader, out, progress_bar=False)


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    assert before.keys() == after.keys()
    return {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}


@pytest.mark.parametrize("vision, lm", [("clip", "llama"), ("siglip", "qwen2")])
def test_align_then_instruct_on_hf_towers_train_exactly_their_freeze_plans(tiny_hf_dirs: dict[str, Path], tmp_path: Path, vision: str, lm: str):
    data = tmp_path / "data"
    build_shapes_dataset(ShapesConfig(seed=3, image_size=32, train=16, val=2, test=2, max_shapes=2), 320, data, pretrained_tokenizer=tiny_hf_dirs[lm])
    tokenizer = load_dataset_tokenizer(data)
    cfg = ModelConfig(
        vision=VisionConfig(pretrained=tiny_hf_dirs[vision]), language_model=LanguageModelConfig(pretrained=tiny_hf_dirs[lm]), connector="mlp2x_gelu"
    )
    torch.manual_seed(0)
    model = build_stage_model("llava_pretrain", cfg, tokenizer)
    start = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    # stage 1 (align): tower and LM frozen, the projector trains
    align = run_stage(model, "llava_pretrain", ["connector"], data, tokenizer, tmp_path / "align.safetensors")
    aligned = load_weights(align.weights)
    connector = {name for name in start if name.startswith("connector.")}
    assert changed(start, aligned) == connector
    assert align.freeze.trainable_count == sum(p.numel() for n, p in model.named_parameters() if n.startswith("connector."))

    # stage 2 (instruct): started from stage 1 (init: {"*": align}), the tower stays frozen
    model = build_stage_model("llava_instruct", cfg, tokenizer)
    init_part(model, "*", aligned, "align")
    instruct = run_stage(model, "llava_instruct", ["connector", "language_model"], data, tokenizer, tmp_path / "instruct.safetensors")
    moved = changed(aligned, load_weights(instruct.weights))
    assert moved == {name for name in aligned if name.startswith(("connector.", "language_model."))}
    assert not any(name.startswith("vision.") for name in moved)
