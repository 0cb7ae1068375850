"""The benchmarks run and write their figures (a ratio against a goal, with the machine): at toy sizes, so this
proves the scripts work, not how fast anything is; the timings themselves are never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import data_loader, dataset_versioning, lightning_step

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("benchmark", "args"), [
    (lightning_step, ["--steps", "1", "--rounds", "1", "--scenes", "40"]),
    (data_loader, ["--scenes", "40", "--rounds", "1"]),
    (dataset_versioning, ["--scenes", "20", "--rounds", "1"]),
], ids=["lightning_step", "data_loader", "dataset_versioning"])
def test_a_benchmark_writes_its_ratio_goal_and_machine(benchmark, args, tmp_path: Path):
    out = tmp_path / "figures.json"
    assert benchmark.main([*args, "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["ratio"] > 0 and figures["goal"] > 0 and isinstance(figures["meets_goal"], bool)
    assert figures["meets_goal"] == (figures["ratio"] <= figures["goal"] if figures["at_most"] else figures["ratio"] >= figures["goal"])
    assert figures["machine"]["cpus"] >= 1 and figures["what"]
