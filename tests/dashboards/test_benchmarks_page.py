"""The Benchmarks page shows each benchmark's ratio against its goal, from the JSON files the benchmarks write."""

from __future__ import annotations

import json
from pathlib import Path

from app_testing import open_app

from dashboards.benchmark_figures import RESULTS_ENV, load_figures, ratio_chart

PAGE = "views/benchmarks.py"


def write(folder: Path, name: str, figures: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"benchmark": name, **figures}))


def results(folder: Path) -> Path:
    write(folder, "lightning_step", {"what": "Lightning vs plain", "ratio": 1.012, "goal": 1.03, "at_most": True, "meets_goal": True,
                                     "machine": {"cpus": 2, "torch": "2.13.0"}, "median_step_ms": {"lightning": 50.6, "plain": 50.0}})
    write(folder, "data_loader", {"what": "loader vs raw", "ratio": 0.5, "goal": 0.9, "at_most": False, "meets_goal": False, "machine": {"cpus": 2}})
    write(folder, "lineage_ancestry", {"what": "ancestry vs SQL", "ratio": 3.1, "goal": None, "goal_text": "median < 50 ms (was 12.0)",
                                       "meets_goal": True, "machine": {"backend": "sqlite"}})
    (folder / "summary.json").write_text(json.dumps({"rows": []}))  # run_all's table, not a benchmark
    (folder / "broken.json").write_text("{not json")
    return folder


def test_figures_are_read_with_their_goals_and_a_broken_file_is_named(tmp_path: Path):
    figures, problems = load_figures(results(tmp_path / "results"))
    assert [(f.name, f.goal, f.meets_goal) for f in figures] == [
        ("data_loader", ">= 0.9", False), ("lightning_step", "<= 1.03", True), ("lineage_ancestry", "median < 50 ms (was 12.0)", True)]
    assert problems == [problems[0]] and problems[0].startswith("broken.json: not a benchmark's figures (JSONDecodeError")
    chart = ratio_chart(figures)
    assert [row["met"] for row in chart["data"]["values"]] == ["misses its goal", "meets its goal", "meets its goal"]


def test_the_page_charts_and_tables_the_ratios(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(RESULTS_ENV, str(results(tmp_path / "results")))
    app = open_app(monkeypatch, tmp_path / "work", PAGE)
    assert "broken.json: not a benchmark's figures" in app.warning[0].value
    table = app.dataframe[0].value
    assert list(table["benchmark"]) == ["data_loader", "lightning_step", "lineage_ancestry"] and list(table["met"]) == ["no", "yes", "yes"]
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    assert app.json[0].value and "ratio" in app.json[0].value


def test_without_figures_the_page_says_how_to_make_them(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "none"))
    app = open_app(monkeypatch, tmp_path / "work", PAGE)
    assert "python benchmarks/run_all.py" in app.info[0].value and not (tmp_path / "none").exists()
