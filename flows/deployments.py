"""Recipes as Prefect deployments on a work pool: scheduled by cron, listed with their next runs.

A deployment runs the pipeline flow from this checkout (`flows/pipeline.py:pipeline`) with two
parameters, the recipe's path and the workdir. A worker of the pool starts each run as a process
in the worker's environment, so the worker's MMOPS_ settings (or settings file) choose the
tracking server, lineage store and artifact store: a deployment holds no settings and no secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.schedules import CronSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

from flows.pipeline import pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/pipeline.py:pipeline"
PROCESS_TEMPLATE = PROJECT_ROOT / "infra" / "work-pools" / "process.json"
TAG = "mmops"


@dataclass(frozen=True)
class ScheduledRecipe:
    deployment: str
    """FLOW/DEPLOYMENT, as `prefect deployment run` names it."""
    recipe: str
    workdir: str
    pool: str
    cron: str | None
    timezone: str | None
    paused: bool
    next_run: datetime | None


def ensure_process_pool(name: str) -> None:
    """A process work pool of this name, created with infra/'s job template if there is none."""
    template = json.loads(PROCESS_TEMPLATE.read_text())
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))


def schedule_recipe(name: str, recipe_path: Path, workdir: Path, schedule: CronSchedule, pool: str) -> str:
    """Create (or replace) the deployment `mmops-pipeline/<name>` running the recipe on the schedule; its id."""
    ensure_process_pool(pool)
    source = pipeline.from_source(source=str(PROJECT_ROOT), entrypoint=ENTRYPOINT)
    deployment_id = source.deploy(
        name=name,
        work_pool_name=pool,
        schedules=[schedule],
        parameters={"recipe_path": str(recipe_path.resolve()), "workdir": str(workdir.resolve())},
        description=f"mmops run {recipe_path} --workdir {workdir}",
        tags=[TAG],
        concurrency_limit=1,  # a recipe's runs queue behind one another rather than race for its workdir
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,
    )
    return str(deployment_id)


def scheduled_recipes() -> list[ScheduledRecipe]:
    """Every mmops deployment on the server with its schedule and its next scheduled run."""
    with get_client(sync_client=True) as client:
        deployments = [d for d in client.read_deployments() if TAG in (d.tags or [])]
        upcoming = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id for d in deployments])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        ) if deployments else []
    next_runs: dict = {}  # deployment id -> its earliest scheduled run
    for run in upcoming:
        next_runs.setdefault(run.deployment_id, run.expected_start_time)
    rows = []
    for deployment in deployments:
        cron = next((s.schedule for s in deployment.schedules if isinstance(s.schedule, CronSchedule)), None)
        rows.append(ScheduledRecipe(
            deployment=f"{pipeline.name}/{deployment.name}",
            recipe=deployment.parameters.get("recipe_path", ""),
            workdir=deployment.parameters.get("workdir", ""),
            pool=deployment.work_pool_name or "",
            cron=cron.cron if cron else None,
            timezone=cron.timezone if cron else None,
            paused=bool(deployment.paused),
            next_run=next_runs.get(deployment.id),
        ))
    return sorted(rows, key=lambda r: r.deployment)
