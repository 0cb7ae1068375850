"""The benchmarks run and write their figures (a ratio against a goal, with the machine): at toy sizes, so this
proves the scripts work, not how fast anything is; the timings themselves are never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import data_loader, dataset_versioning, kv_cache_decoding, lightning_step, lineage_ancestry, pipeline_overhead

pytestmark = pytest.mark.slow
TINY_LLAVA = Path(__file__).parents[1] / "e2e" / "tiny_llava.yaml"


@pytest.mark.parametrize(("benchmark", "args"), [
    (lightning_step, ["--steps", "1", "--rounds", "1", "--scenes", "40"]),
    (data_loader, ["--scenes", "40", "--rounds", "1"]),
    (dataset_versioning, ["--scenes", "20", "--rounds", "1"]),
    (kv_cache_decoding, ["--recipe", str(TINY_LLAVA), "--batch", "2", "--prompt", "8", "--new", "4", "--rounds", "1"]),
    (pipeline_overhead, ["--recipe", str(TINY_LLAVA)]),
], ids=["lightning_step", "data_loader", "dataset_versioning", "kv_cache_decoding", "pipeline_overhead"])
def test_a_benchmark_writes_its_ratio_goal_and_machine(benchmark, args, tmp_path: Path):
    out = tmp_path / "figures.json"
    assert benchmark.main([*args, "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["ratio"] > 0 and figures["goal"] > 0 and isinstance(figures["meets_goal"], bool)
    assert figures["meets_goal"] == (figures["ratio"] <= figures["goal"] if figures["at_most"] else figures["ratio"] >= figures["goal"])
    assert figures["machine"]["cpus"] >= 1 and figures["what"]


def test_the_lineage_benchmark_writes_the_figures_run_all_reads(tmp_path: Path):
    """Its ratio has no goal; its median has a target, which is what the table's last column says."""
    out = tmp_path / "figures.json"
    assert lineage_ancestry.main(["--runs", "50", "--samples", "3", "--warmup", "1", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["ratio"] > 0 and figures["goal"] is None and figures["goal_text"].startswith("median < 50 ms")
    assert figures["meets_goal"] == figures["under_target"] and figures["what"]
