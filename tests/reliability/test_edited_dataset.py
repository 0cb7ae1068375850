"""An image edited or corrupted after its dataset was versioned is found by checksum before anything trains: the run
fails naming the file, nothing is trained or registered, and `dvc checkout` puts the version back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmops.errors import PipelineError
from mmops.settings import Settings
from registry.data_repo import DvcRemote, verify_dataset, version_dataset, version_derived_dataset
from registry.tracking import client_for
from tests.registry.test_data_repo import PARAMS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runs_on_loopback_prefect")]
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte: the same size, and written a second after (DVC rehashes what changed in size or time)
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_an_edited_file_of_a_generated_or_written_dataset_is_named_and_checkout_restores_it(tmp_path: Path):
    repo, remote = tmp_path / "datasets", DvcRemote(str(tmp_path / "remote"))
    generated = version_dataset(repo, remote, "tiny", PARAMS)
    written = version_derived_dataset(repo, remote, "tiny-notes", generated, {"notes.txt": "hello"})
    verify_dataset(repo, "tiny")
    verify_dataset(repo, "tiny-notes")

    corrupt(generated.path / "images" / "train" / "train_000004.png")
    with pytest.raises(PipelineError, match=r"dataset 'tiny' .*1 file\(s\) differ from the versioned data by checksum: images/train/train_000004.png"):
        version_dataset(repo, remote, "tiny", PARAMS)  # refused, not silently rebuilt
    (written.path / "notes.txt").write_text("hello!")
    with pytest.raises(PipelineError, match=r"dataset 'tiny-notes' .*: notes.txt\. Nothing was trained\. Restore the version with `dvc checkout data/tiny-notes`"):
        verify_dataset(repo, "tiny-notes")

    for name in ("tiny", "tiny-notes"):
        subprocess.run([sys.executable, "-m", "dvc", "checkout", "-q", "--force", f"data/{name}"] if name == "tiny" else
                       [sys.executable, "-m", "dvc", "checkout", "-q", "--force", f"data/{name}.dvc"], cwd=repo, check=True, capture_output=True)
        verify_dataset(repo, name)
    assert version_dataset(repo, remote, "tiny", PARAMS).md5 == generated.md5


def test_a_run_on_a_corrupted_image_fails_before_training_and_registers_nothing(tmp_path: Path):
    workdir = tmp_path / "work"
    env = {**os.environ, "MMOPS_ACTOR": "reliability-tester"}
    first = subprocess.run([sys.executable, "-m", "mmops", "run", str(TINY_CLIP), "--workdir", str(workdir)], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-4000:]
    image = workdir / "datasets" / "data" / "tiny-shapes" / "images" / "test" / "test_000002.png"
    corrupt(image)
    runs_before = {p.name for p in (workdir / "runs").iterdir()}

    second = subprocess.run([sys.executable, "-m", "mmops", "run", str(TINY_CLIP), "--workdir", str(workdir)], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 2
    assert "error: dataset 'tiny-shapes'" in second.stderr and "images/test/test_000002.png" in second.stderr and "Traceback" not in second.stderr.split("error: ")[-1]
    client = client_for(Settings.for_workdir(workdir, env={}))
    assert [str(v.version) for v in client.search_model_versions("name='tiny-clip'")] == ["1"], "nothing registered"
    started = {p.name for p in (workdir / "runs").iterdir()} - runs_before
    assert all(not (workdir / "runs" / name / "stages").exists() for name in started), "no stage trained"
