"""Dataset versions with real DVC in a real git repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmops.errors import PipelineError
from registry.data_repo import DatasetVersion, DvcRemote, ensure_repo, version_dataset, version_derived_dataset

PARAMS = {"shapes": {"seed": 0, "image_size": 32, "train": 12, "val": 2, "test": 2, "max_shapes": 2}, "tokenizer": {"vocab_size": 300}}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_version_build_commit_push_and_reuse(tmp_path: Path):
    repo, remote = tmp_path / "datasets", tmp_path / "remote"
    first = version_dataset(repo, DvcRemote(str(remote)), "tiny", PARAMS)
    assert first.md5.endswith(".dir") and len(first.git_rev) == 40
    assert (first.path / "instruct_train.json").is_file() and (first.path / "tokenizer.json").is_file()
    assert git(repo, "rev-parse", "HEAD").strip() == first.git_rev
    tracked = git(repo, "ls-files").split()
    assert {"dvc.yaml", "dvc.lock", "params.yaml", "data/.gitignore"} <= set(tracked)
    assert not any(name.startswith("data/tiny/") for name in tracked), "the data itself belongs to DVC, not git"
    pushed = [p for p in remote.rglob("*") if p.is_file()]
    assert len(pushed) > 12, "the data was not pushed to the DVC remote"

    again = version_dataset(repo, DvcRemote(str(remote)), "tiny", PARAMS)
    assert (again.md5, again.git_rev) == (first.md5, first.git_rev), "unchanged parameters must not make a new version"

    changed = version_dataset(repo, DvcRemote(str(remote)), "tiny", {**PARAMS, "shapes": {**PARAMS["shapes"], "seed": 1}})
    assert changed.md5 != first.md5 and changed.git_rev != first.git_rev
    assert "dataset tiny" in git(repo, "log", "-1", "--format=%s")
    dag = subprocess.run([sys.executable, "-m", "dvc", "dag"], cwd=repo, capture_output=True, text=True, check=True)
    assert "tiny" in dag.stdout


@pytest.mark.slow
def test_a_derived_dataset_is_a_new_dvc_version_sharing_the_source_files(tmp_path: Path):
    repo, remote = tmp_path / "datasets", tmp_path / "remote"
    source = version_dataset(repo, DvcRemote(str(remote)), "tiny", PARAMS)
    image = next(p for p in (source.path / "images").rglob("*.png"))
    first = version_derived_dataset(repo, DvcRemote(str(remote)), "tiny-capfilt", source, {"captions_train.json": "[]", "capfilt.json": "{}"})
    assert first.md5.endswith(".dir") and first.md5 != source.md5
    assert (first.path / "captions_train.json").read_text() == "[]"
    assert (first.path / "captions_test.json").read_text() == (source.path / "captions_test.json").read_text()
    assert (first.path / image.relative_to(source.path)).read_bytes() == image.read_bytes()
    tracked = git(repo, "ls-files").split()
    assert "data/tiny-capfilt.dvc" in tracked and not any(n.startswith("data/tiny-capfilt/") for n in tracked)
    assert "dataset tiny-capfilt (from tiny" in git(repo, "log", "-1", "--format=%s")
    # the source version is untouched: DVC still finds it as committed
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "tiny"], cwd=repo, capture_output=True, text=True, check=True)
    assert "changed" not in status.stdout, status.stdout

    same = version_derived_dataset(repo, DvcRemote(str(remote)), "tiny-capfilt", source, {"captions_train.json": "[]", "capfilt.json": "{}"})
    assert (same.md5, same.git_rev) == (first.md5, first.git_rev), "the same content is the same version"
    second = version_derived_dataset(repo, DvcRemote(str(remote)), "tiny-capfilt", source, {"captions_train.json": "[1]", "capfilt.json": "{}"})
    assert second.md5 != first.md5 and second.git_rev != first.git_rev
    # the first version stays reachable: its git revision checks it out from the remote
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", first.git_rev], cwd=clone, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q", "data/tiny-capfilt.dvc"], cwd=clone, check=True, capture_output=True)
    assert (clone / "data" / "tiny-capfilt" / "captions_train.json").read_text() == "[]"
    with pytest.raises(PipelineError, match="generated from parameters"):
        version_derived_dataset(repo, DvcRemote(str(remote)), "tiny", source, {})


@pytest.mark.parametrize("bad", ["../escape.json", "/abs.json", "sub/../../x.json"])
def test_a_derived_dataset_refuses_files_outside_itself(tmp_path: Path, bad: str):
    repo, remote = tmp_path / "datasets", tmp_path / "remote"
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    (source_dir / "a.json").write_text("{}")
    source = DatasetVersion("src", source_dir, "0" * 32 + ".dir", "f" * 40, str(remote))
    with pytest.raises(PipelineError, match="not a path inside the dataset"):
        version_derived_dataset(repo, DvcRemote(str(remote)), "derived", source, {bad: "x"})
    assert not (tmp_path / "escape.json").exists() and not (repo / "data" / "derived").exists()


def test_the_remote_is_set_again_only_when_the_settings_change_it(tmp_path: Path):
    repo = tmp_path / "datasets"
    dvc_remote = lambda: subprocess.run([sys.executable, "-m", "dvc", "remote", "list"], cwd=repo,  # noqa: E731
                                        capture_output=True, text=True, check=True).stdout
    local_config = repo / ".dvc" / "config.local"
    ensure_repo(repo, DvcRemote(str(tmp_path / "first")))
    written = (repo / ".dvc" / "config").stat().st_mtime_ns
    ensure_repo(repo, DvcRemote(str(tmp_path / "first")))
    assert (repo / ".dvc" / "config").stat().st_mtime_ns == written, "the same remote: DVC's config is not written again"

    ensure_repo(repo, DvcRemote("s3://bucket/datasets", endpoint_url="http://127.0.0.1:9", region="eu-west-1"))
    assert "s3://bucket/datasets" in dvc_remote()
    assert "endpointurl = http://127.0.0.1:9" in local_config.read_text() and "region = eu-west-1" in local_config.read_text()
    ensure_repo(repo, DvcRemote("s3://bucket/datasets", region="eu-west-1"))
    assert "endpointurl" not in local_config.read_text() and "region = eu-west-1" in local_config.read_text()
    ensure_repo(repo, DvcRemote(str(tmp_path / "second")))
    assert str(tmp_path / "second") in dvc_remote() and "region" not in local_config.read_text()
    assert not git(repo, "status", "--porcelain").strip(), "every change committed"
