"""The benchmarks' figures as the Benchmarks page shows them: one row per `benchmarks/results/<name>.json`.

Plain functions, no Streamlit. The folder is the repository's `benchmarks/results` (where `python
benchmarks/run_all.py` writes), or MMOPS_BENCHMARK_RESULTS when the dashboard runs elsewhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS_ENV = "MMOPS_BENCHMARK_RESULTS"
DEFAULT_RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
NOT_A_BENCHMARK = {"summary.json"}  # run_all's table of the others


@dataclass(frozen=True)
class BenchmarkFigures:
    name: str
    what: str
    ratio: float
    goal: str
    """The goal in words: `<= 1.03`, `>= 0.9`, or a target of another figure."""
    meets_goal: bool
    measured: datetime
    machine: str
    details: dict


def results_folder(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(RESULTS_ENV) or DEFAULT_RESULTS)


def load_figures(folder: Path) -> tuple[list[BenchmarkFigures], list[str]]:
    """The figures of every benchmark in `folder`, by name, and a problem per file that could not be read."""
    figures, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name in NOT_A_BENCHMARK:
            continue
        try:
            figures.append(_figures(path))
        except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
            problems.append(f"{path.name}: not a benchmark's figures ({type(error).__name__}: {error})")
    return figures, problems


def _figures(path: Path) -> BenchmarkFigures:
    data = json.loads(path.read_text())
    goal = data.get("goal_text") or f"{'<=' if data['at_most'] else '>='} {float(data['goal']):g}"
    machine = data.get("machine") or {}
    shown_machine = ", ".join(f"{key} {value}" for key, value in machine.items() if key in ("cpus", "torch", "python", "backend"))
    return BenchmarkFigures(
        name=data.get("benchmark", path.stem), what=str(data["what"]), ratio=float(data["ratio"]), goal=goal,
        meets_goal=bool(data["meets_goal"]), measured=datetime.fromtimestamp(path.stat().st_mtime, UTC), machine=shown_machine,
        details=data,
    )


def table_rows(figures: list[BenchmarkFigures]) -> list[dict]:
    return [{"benchmark": f.name, "ratio": f.ratio, "goal": f.goal, "met": "yes" if f.meets_goal else "no", "what": f.what,
             "measured (UTC)": f.measured.strftime("%Y-%m-%d %H:%M"), "machine": f.machine} for f in figures]


def ratio_chart(figures: list[BenchmarkFigures]) -> dict:
    """A Vega-Lite chart: each benchmark's ratio as a bar coloured by whether it meets its goal, and the goal as a
    tick on the same scale (for the benchmarks whose goal is a ratio)."""
    rows = [{"benchmark": f.name, "ratio": f.ratio, "goal": f.details.get("goal"), "met": "meets its goal" if f.meets_goal else "misses its goal"}
            for f in figures]
    y = {"field": "benchmark", "type": "nominal", "title": None}
    return {
        "data": {"values": rows},
        "layer": [
            {"mark": "bar", "encoding": {"y": y, "x": {"field": "ratio", "type": "quantitative", "title": "ratio"},
                                         "color": {"field": "met", "type": "nominal", "title": None,
                                                   "scale": {"domain": ["meets its goal", "misses its goal"], "range": ["#2e7d32", "#c62828"]}}}},
            {"mark": {"type": "tick", "thickness": 3, "color": "black"}, "transform": [{"filter": "datum.goal != null"}],
             "encoding": {"y": y, "x": {"field": "goal", "type": "quantitative"}}},
        ],
    }
