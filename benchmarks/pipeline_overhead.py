"""What do orchestration and tracking cost? The wall time of `mmops run` on the demo recipe, as a user waits for it
(Python starting, Prefect's ephemeral server, MLflow's and the lineage store's databases, every task and what lies
between them), against the sum of the bodies of its Prefect tasks (versioning the data, each stage, evaluation,
registration, the gate) as Prefect recorded them in the same run.

The ratio wall / task bodies (goal <= 1.10) is what the platform adds around the work. The figures also split the
wall time into the process before the flow began, the flow around its tasks, and the process after. They are
written to benchmarks/results/pipeline_overhead.json. A measurement, not a test: it exits 0 whatever the figures.

    python benchmarks/pipeline_overhead.py                                    # the demo: recipes/llava.yaml
    python benchmarks/pipeline_overhead.py --recipe tests/e2e/tiny_llava.yaml # toy sizes: fixed costs dominate
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import verdict, write_figures  # noqa: E402

GOAL = 1.10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "llava.yaml"))
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def recorded_runs(prefect_db: Path) -> tuple[tuple[datetime, datetime], dict[str, float]]:
    """The flow run's start and end, and each task run's seconds, from the ephemeral server's database
    (the server is gone with the process; its records stay in the workdir)."""
    with sqlite3.connect(f"file:{prefect_db}?mode=ro", uri=True) as db:
        ((flow_start, flow_end),) = db.execute("SELECT start_time, end_time FROM flow_run WHERE state_type = 'COMPLETED'").fetchall()
        tasks = db.execute("SELECT name, start_time, end_time FROM task_run WHERE state_type = 'COMPLETED'").fetchall()
    when = datetime.fromisoformat
    return (when(flow_start), when(flow_end)), {name: (when(end) - when(start)).total_seconds() for name, start, end in tasks}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmops-overhead-") as tmp:
        workdir = Path(tmp) / "work"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("MMOPS_", "PREFECT_", "MLFLOW_"))}
        started_at, start = datetime.now(UTC).replace(tzinfo=None), time.perf_counter()  # Prefect records naive UTC
        subprocess.run([sys.executable, "-m", "mmops", "run", args.recipe, "--workdir", str(workdir)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        (flow_start, flow_end), tasks = recorded_runs(workdir / "prefect" / "prefect.db")
    bodies = sum(tasks.values())
    before, flow = (flow_start - started_at).total_seconds(), (flow_end - flow_start).total_seconds()
    ratio = wall / bodies
    print(f"mmops run {Path(args.recipe).name}: wall {wall:.1f} s, {len(tasks)} task bodies {bodies:.1f} s")
    for name, seconds in sorted(tasks.items(), key=lambda item: -item[1]):
        print(f"  {name:32s} {seconds:8.1f} s")
    print(f"  before the flow {before:.1f} s, the flow around its tasks {flow - bodies:.1f} s, after it {wall - before - flow:.1f} s")
    print(f"  wall / task bodies: {verdict(ratio, GOAL, at_most=True)}")
    write_figures("pipeline_overhead", {
        "what": f"`mmops run {Path(args.recipe).name}` wall time vs the sum of its Prefect task bodies",
        "wall_s": round(wall, 2), "task_bodies_s": round(bodies, 2), "tasks_s": {k: round(v, 2) for k, v in tasks.items()},
        "before_flow_s": round(before, 2), "flow_beyond_tasks_s": round(flow - bodies, 2), "after_flow_s": round(wall - before - flow, 2),
        "ratio": round(ratio, 4), "goal": GOAL, "at_most": True,
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
