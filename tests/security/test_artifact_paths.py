"""Artifact paths from a registry cannot lead out of their place: a version whose source names a path (not a model
logged to the artifact store) is not downloaded, and a served model's artifacts must be files of its own folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.data.errors import DataError
from flows.served_model import check_artifact_paths
from mmops.errors import RegistryError
from mmops.settings import Settings
from registry.model_versions import resolve_model
from registry.tracking import client_for


def test_a_version_whose_source_is_a_folder_elsewhere_is_not_downloaded(tmp_path: Path):
    outside = tmp_path / "home" / "someone"
    outside.mkdir(parents=True)
    (outside / "model.safetensors").write_bytes(b"not ours to read")
    settings = Settings.for_workdir(tmp_path / "work", env={})
    settings.workdir.mkdir()
    client = client_for(settings)
    client.create_registered_model("planted")
    client.create_model_version("planted", source=str(outside), run_id=None)
    with pytest.raises(RegistryError, match=r"models:/planted/1 \(version 1\): its source '.*home/someone' is not a logged model"):
        resolve_model(settings, "models:/planted/1")


def served(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "model" / "artifacts"
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "tokenizer.json", "model_config.json"):
        (folder / name).write_text("{}")
    return {"weights": str(folder / "model.safetensors"), "tokenizer": str(folder / "tokenizer.json"),
            "model_config": str(folder / "model_config.json")}


def test_a_served_models_artifacts_stay_in_its_artifacts_folder(tmp_path: Path):
    artifacts = served(tmp_path)
    check_artifact_paths(artifacts)  # as mmops logs them
    secret = tmp_path / "secret.txt"
    secret.write_text("password")

    climbing = artifacts | {"tokenizer": str(tmp_path / "model" / "artifacts" / ".." / ".." / "secret.txt")}
    with pytest.raises(ValueError, match="not all in its one artifacts folder"):
        check_artifact_paths(climbing)
    elsewhere = artifacts | {"tokenizer": str(secret)}
    with pytest.raises(ValueError, match="not all in its one artifacts folder"):
        check_artifact_paths(elsewhere)

    link = Path(artifacts["tokenizer"])
    link.unlink()
    os.symlink(secret, link)
    with pytest.raises(DataError, match=r"the model's artifact 'tokenizer': artifact path 'tokenizer.json' resolves to .*secret.txt, outside"):
        check_artifact_paths(artifacts)
