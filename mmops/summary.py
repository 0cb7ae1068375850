"""The end-of-run summary a person reads: data version, runs, metrics, registry state, where to look next."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_summary(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    data = summary["dataset"]
    if summary["promoted"]:
        status = "[green]production[/green]"
    elif summary.get("request_id") is not None:
        status = f"[yellow]candidate (gate passed; promotion request #{summary['request_id']} awaits approval)[/yellow]"
    else:
        status = "[yellow]candidate (gate not passed)[/yellow]"
    console.rule(f"[bold]{summary['model']} v{summary['version']}[/bold]: {status}")
    console.print(f"dataset   {data['name']}  md5 {data['md5']}  git {data['git_rev'][:10]}")
    for stage, written in summary.get("datasets_written", {}).items():
        console.print(f"  written by {stage}: {written['name']}  md5 {written['md5']}  git {written['git_rev'][:10]}")
    console.print(f"pipeline  MLflow run {summary['pipeline_run_id']}  ({summary['seconds']:.0f}s)")
    stages = Table("stage", "MLflow run", "seconds", box=None)
    for name, run_id in summary["stage_runs"].items():
        stages.add_row(name, run_id, f"{summary['stage_seconds'][name]:.1f}")
    console.print(stages)
    metrics = Table("metric", "value", box=None)
    for name, value in sorted(summary["metrics"].items()):
        metrics.add_row(name, f"{value:.4f}" if not name.endswith(("_items", "_classes")) else f"{value:.0f}")
    console.print(metrics)
    console.print(f"production version: {summary['production_version'] or 'none'}")
    for reason in summary["gate_reasons"]:
        console.print(f"  gate: {reason}")
    if summary.get("request_id") is not None:
        console.print(f"  approve with: mmops approve {summary['model']} {summary['request_id']} --reason '...' "
                      f"--workdir {summary['workdir']}")
    workdir = summary["workdir"]
    console.print("\n[bold]where to look next[/bold]")
    console.print(f"  mlflow ui --backend-store-uri {summary['tracking_uri']}")
    console.print(f"  mmops models --workdir {workdir}")
    console.print(f"  python -c \"import mlflow; mlflow.set_tracking_uri('{summary['tracking_uri']}'); "
                  f"print(mlflow.pyfunc.load_model('models:/{summary['model']}@production'))\"")
    console.print(f"  cd {workdir}/datasets && dvc dag")
