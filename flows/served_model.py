"""What every registered model's pyfunc loads first: its config, tokenizer and weights.

The model config artifact records the recipe's architecture and the output
stage's objective; the stage's builder makes the model (pretrained towers from
their logged HF configs) and the safetensors weights load over it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from components.data.paths import resolve_inside
from components.data.tokenizer import TextTokenizer
from components.models.family import ModelConfig
from components.training.checkpoints import load_weights
from components.training.stage_models import build_stage_model
from flows.pretrained_artifacts import served_model_spec


@dataclass(frozen=True)
class ServedModel:
    config: ModelConfig
    tokenizer: TextTokenizer
    model: nn.Module
    spec: dict
    """The logged model_config.json: model, objective and the serving options (max_new_tokens)."""


def load_served_model(artifacts: dict[str, str]) -> ServedModel:
    check_artifact_paths(artifacts)
    spec = json.loads(Path(artifacts["model_config"]).read_text())
    config = ModelConfig.model_validate(served_model_spec(spec["model"], artifacts))
    tokenizer = TextTokenizer.load(Path(artifacts["tokenizer"]))
    # versions logged before the objective was recorded are LLaVA-style
    model = build_stage_model(spec.get("objective", "llava_instruct"), config, tokenizer, load_pretrained=False)
    model.load_state_dict(load_weights(Path(artifacts["weights"])))
    return ServedModel(config, tokenizer, model.eval(), spec)


def check_artifact_paths(artifacts: dict[str, str]) -> None:
    """MLflow joins each artifact's path in the model's MLmodel file to the model's folder, so a path with '..' or a
    symlink in the folder would read a file elsewhere on the machine. Every artifact must be a file of the model's
    one `artifacts` folder, as mmops logs them."""
    folders = {Path(path).parent for path in artifacts.values()}
    folder = folders.pop() if len(folders) == 1 else None
    if folder is None or folder.name != "artifacts" or any(".." in Path(path).parts for path in artifacts.values()):
        raise ValueError(f"the model's artifacts {sorted(artifacts.values())} are not all in its one artifacts folder; refused")
    for name, path in artifacts.items():
        resolve_inside(folder, Path(path).name, f"the model's artifact {name!r}", "artifact path")  # a symlink out is refused
