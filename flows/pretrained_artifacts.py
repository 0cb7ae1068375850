"""The HF configs a registered model with pretrained towers carries, so that serving never needs the
original directories: the towers are rebuilt from these configs and our safetensors loaded over them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from components.models.family import ModelConfig
from components.models.hf_config import copy_configs

PRETRAINED_PARTS = ("vision", "language_model")


def artifact_name(part: str) -> str:
    return f"{part}_hf_config"


def pretrained_config_artifacts(model: ModelConfig, out_dir: Path) -> dict[str, str]:
    """Copy each pretrained tower's config files under `out_dir`; MLflow artifact name -> folder."""
    artifacts = {}
    for part in PRETRAINED_PARTS:
        directory = getattr(model, part).pretrained
        if directory is not None:
            artifacts[artifact_name(part)] = str(copy_configs(directory, out_dir / artifact_name(part)))  # MLflow keeps the folder name
    return artifacts


def served_model_spec(model_spec: dict, artifacts: Mapping[str, str]) -> dict:
    """The logged model config with each pretrained tower pointing at its config folder in the
    loaded model's artifacts instead of the training machine's directory."""
    spec = dict(model_spec)
    for part in PRETRAINED_PARTS:
        if artifact_name(part) in artifacts:
            spec[part] = {**spec[part], "pretrained": artifacts[artifact_name(part)]}
    return spec
