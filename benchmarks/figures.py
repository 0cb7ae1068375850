"""Where a benchmark's figures go: JSON in benchmarks/results/ (the dashboard's Benchmarks page reads them), with the
machine they were taken on, and the ratio against the goal said in words."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


def verdict(ratio: float, goal: float, at_most: bool) -> str:
    met = ratio <= goal if at_most else ratio >= goal
    return f"{ratio:.3f} ({'meets' if met else 'misses'} the goal {'<=' if at_most else '>='} {goal})"


def write_figures(name: str, figures: dict, out: str | None = None) -> Path:
    """figures (with `ratio`, `goal` and `at_most`) and the machine, as benchmarks/results/<name>.json or `out`."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    met = figures["ratio"] <= figures["goal"] if figures["at_most"] else figures["ratio"] >= figures["goal"]
    path.write_text(json.dumps({"benchmark": name, **figures, "meets_goal": met, "machine": machine()}, indent=1))
    print(f"figures written to {path}")
    return path
