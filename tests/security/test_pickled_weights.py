"""A registered model whose weights were swapped for a pickle (one that would write a file if it were ever
unpickled) is refused when a recipe starts from it: the run fails naming the file, nothing runs the pickle's code,
nothing is trained or registered."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmops.settings import Settings
from registry.tracking import client_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_on_loopback_prefect")]
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"


class WritesAFile:
    """Unpickling this opens (creates) the marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def mmops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmops", *args], capture_output=True, text=True, env=env, timeout=600)


def test_a_pickle_in_place_of_registered_weights_is_refused_without_running_it(tmp_path: Path):
    workdir, marker = tmp_path / "work", tmp_path / "pwned"
    env = {**os.environ, "MMOPS_ACTOR": "security-tester"}
    assert mmops("run", str(TINY_CLIP), "--workdir", str(workdir), env=env).returncode == 0
    swapped = sorted((workdir / "mlartifacts").rglob("model.safetensors"))
    assert swapped, "the registered model's weights"
    for path in swapped:
        path.write_bytes(pickle.dumps(WritesAFile(marker)))

    child = yaml.safe_load(TINY_CLIP.read_text())
    child["name"] = "tiny-clip-child"
    child["stages"][0]["init"] = {"vision": "models:/tiny-clip@production"}
    recipe = tmp_path / "child.yaml"
    recipe.write_text(yaml.safe_dump(child))
    result = mmops("run", str(recipe), "--workdir", str(workdir), env=env)

    assert result.returncode == 2, result.stderr[-3000:]
    assert "model.safetensors: not a valid safetensors file" in result.stderr
    assert not marker.exists(), "the pickle's code ran"
    client = client_for(Settings.for_workdir(workdir, env={}))
    assert client.search_model_versions("name='tiny-clip-child'") == []
