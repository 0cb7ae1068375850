"""A workdir that cannot take a run's writes: read-only or too small, the run is refused before anything is written;
one that fills up during the run ends it with that said plainly (no library traceback) and no model registered.
The workdirs are real file systems (tmpfs mounts), since root writes through file permissions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmops.settings import Settings
from registry.tracking import client_for
from tests.services import under_ci

pytestmark = pytest.mark.slow
TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB file system of its own."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        if under_ci():
            pytest.fail(f"CI=true: a tmpfs must mount here (as root): {made.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def run(workdir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmops", "run", str(TINY_CLIP), "--workdir", str(workdir)],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=600)


def test_a_read_only_workdir_is_refused_before_anything_runs(small_disk: Path):
    (small_disk / "work").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = run(small_disk / "work", MMOPS_MIN_FREE_MB="1")
    assert result.returncode == 2
    assert f"the workdir {small_disk / 'work'} cannot be written" in result.stderr and "Read-only file system" in result.stderr
    assert list((small_disk / "work").iterdir()) == []


def test_a_workdir_without_room_for_a_run_is_refused_before_anything_is_written(small_disk: Path):
    result = run(small_disk / "work")
    assert result.returncode == 2 and "MiB free, under the 256 MiB a run needs" in result.stderr and "Traceback" not in result.stderr
    assert list(small_disk.iterdir()) == []


def test_a_workdir_that_fills_up_during_a_run_ends_it_plainly_with_no_model_registered(small_disk: Path, tmp_path: Path):
    # let it start on too little space; Prefect's home is elsewhere, so its server starts and the run itself
    # fills the workdir (with Prefect's database on the small disk the server never starts, and the run waited
    # out the 120 s startup timeout)
    result = run(small_disk / "work", MMOPS_MIN_FREE_MB="1", PREFECT_HOME=str(tmp_path / "prefect"))
    assert result.returncode == 2
    said = result.stderr.rsplit("error: ", 1)[-1]
    assert said.startswith(f"the run stopped because its workdir {small_disk / 'work'} is full") and "none was" in said
    # what was written stays (a finished stage's weights, for --resume once there is room), but nothing is registered
    client = client_for(Settings.for_workdir(small_disk / "work", env={}))
    assert client.search_model_versions("name='tiny-clip'") == []
