"""Dataset versions with real DVC in a real git repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from registry.data_repo import version_dataset

PARAMS = {"shapes": {"seed": 0, "image_size": 32, "train": 12, "val": 2, "test": 2, "max_shapes": 2}, "tokenizer": {"vocab_size": 300}}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_version_build_commit_push_and_reuse(tmp_path: Path):
    repo, remote = tmp_path / "datasets", tmp_path / "remote"
    first = version_dataset(repo, str(remote), "tiny", PARAMS)
    assert first.md5.endswith(".dir") and len(first.git_rev) == 40
    assert (first.path / "instruct_train.json").is_file() and (first.path / "tokenizer.json").is_file()
    assert git(repo, "rev-parse", "HEAD").strip() == first.git_rev
    tracked = git(repo, "ls-files").split()
    assert {"dvc.yaml", "dvc.lock", "params.yaml", "data/.gitignore"} <= set(tracked)
    assert not any(name.startswith("data/tiny/") for name in tracked), "the data itself belongs to DVC, not git"
    pushed = [p for p in remote.rglob("*") if p.is_file()]
    assert len(pushed) > 12, "the data was not pushed to the DVC remote"

    again = version_dataset(repo, str(remote), "tiny", PARAMS)
    assert (again.md5, again.git_rev) == (first.md5, first.git_rev), "unchanged parameters must not make a new version"

    changed = version_dataset(repo, str(remote), "tiny", {**PARAMS, "shapes": {**PARAMS["shapes"], "seed": 1}})
    assert changed.md5 != first.md5 and changed.git_rev != first.git_rev
    assert "dataset tiny" in git(repo, "log", "-1", "--format=%s")
    dag = subprocess.run([sys.executable, "-m", "dvc", "dag"], cwd=repo, capture_output=True, text=True, check=True)
    assert "tiny" in dag.stdout
