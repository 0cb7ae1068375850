"""Recipes as Prefect deployments on a work pool: scheduled by cron or started by a new version of their
dataset, listed with their next runs.

A deployment runs the pipeline flow from this checkout (`flows/pipeline.py:pipeline`), or the dataset
refresh (`flows/dataset_flow.py:refresh_dataset`), with two parameters, the recipe's path and the workdir. A worker of the pool starts each run as a process
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

from prefect.events import DeploymentEventTrigger
from prefect.events.schemas.automations import EventTrigger

from flows.dataset_flow import DATASET_VERSIONED, dataset_resource, refresh_dataset
from flows.pipeline import pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/pipeline.py:pipeline"
DATASET_ENTRYPOINT = "flows/dataset_flow.py:refresh_dataset"
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
    on_new_data: str | None = None
    """The dataset whose new versions start a run, if any (a deployment trigger on mmops.dataset.versioned)."""


def ensure_process_pool(name: str) -> None:
    """A process work pool of this name, created with infra/'s job template if there is none."""
    template = json.loads(PROCESS_TEMPLATE.read_text())
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))


def schedule_recipe(
    name: str, recipe_path: Path, workdir: Path, pool: str, schedule: CronSchedule | None = None,
    on_new_data: str | None = None, data_only: bool = False,
) -> str:
    """Create (or replace) the deployment `mmops-pipeline/<name>` running the recipe on the cron schedule and, with
    `on_new_data` (a dataset's name), whenever a refresh announces a new version of that dataset; or, `data_only`,
    `mmops-dataset/<name>` refreshing the recipe's dataset on the schedule. Its id."""
    ensure_process_pool(pool)
    flow, entrypoint = (refresh_dataset, DATASET_ENTRYPOINT) if data_only else (pipeline, ENTRYPOINT)
    triggers = [DeploymentEventTrigger(
        name=f"{name} on new {on_new_data} data", expect={DATASET_VERSIONED}, match={"prefect.resource.id": dataset_resource(on_new_data)},
    )] if on_new_data else []
    source = flow.from_source(source=str(PROJECT_ROOT), entrypoint=entrypoint)
    command = "mmops data version" if data_only else "mmops run"
    deployment_id = source.deploy(
        name=name,
        work_pool_name=pool,
        schedules=[schedule] if schedule is not None else [],
        triggers=triggers,
        parameters={"recipe_path": str(recipe_path.resolve()), "workdir": str(workdir.resolve())},
        description=f"{command} {recipe_path} --workdir {workdir}",
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
        watched = {d.id: _watched_dataset(client, d.id) for d in deployments}
        flows = {d.flow_id: client.read_flow(d.flow_id).name for d in deployments}
    next_runs: dict = {}  # deployment id -> its earliest scheduled run
    for run in upcoming:
        next_runs.setdefault(run.deployment_id, run.expected_start_time)
    rows = []
    for deployment in deployments:
        cron = next((s.schedule for s in deployment.schedules if isinstance(s.schedule, CronSchedule)), None)
        rows.append(ScheduledRecipe(
            deployment=f"{flows[deployment.flow_id]}/{deployment.name}",
            recipe=deployment.parameters.get("recipe_path", ""),
            workdir=deployment.parameters.get("workdir", ""),
            pool=deployment.work_pool_name or "",
            cron=cron.cron if cron else None,
            timezone=cron.timezone if cron else None,
            paused=bool(deployment.paused),
            next_run=next_runs.get(deployment.id),
            on_new_data=watched[deployment.id],
        ))
    return sorted(rows, key=lambda r: r.deployment)


def _watched_dataset(client, deployment_id) -> str | None:
    """The dataset whose mmops.dataset.versioned events trigger the deployment, if one does."""
    prefix = dataset_resource("")
    for automation in client.read_resource_related_automations(f"prefect.deployment.{deployment_id}"):
        trigger = automation.trigger
        if isinstance(trigger, EventTrigger) and DATASET_VERSIONED in trigger.expect:
            for resource in trigger.match.get("prefect.resource.id") or []:
                if resource.startswith(prefix):
                    return resource.removeprefix(prefix)
    return None
