"""`mmops schedule` and `mmops schedules`: recipes as Prefect deployments on a cron schedule or on new data.

Schedules live on a Prefect server (MMOPS_PREFECT_API_URL), and a worker of the pool runs them:
  prefect worker start --pool mmops-process
Everything is checked (the recipe, the cron line, the server's address) before the server is touched.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from mmops.errors import MmopsError

NO_SERVER = ("schedules live on a Prefect server, and none is set: set MMOPS_PREFECT_API_URL (for example "
             "http://127.0.0.1:4200/api, after `prefect server start`) or prefect_api_url in the settings file")


DEFAULT_POOL = "mmops-process"


def add_parsers(sub: argparse._SubParsersAction, workdir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    schedule = sub.add_parser("schedule", help="run a recipe on a cron schedule or on new data: a Prefect deployment on a work pool")
    schedule.add_argument("recipe", type=Path)
    schedule.add_argument("--cron", help="five cron fields, e.g. '0 2 * * *' for 02:00 every day")
    schedule.add_argument("--on-new-data", action="store_true",
                          help="also run it whenever a refresh (mmops data version, or a --data-only schedule) makes a new version of its dataset")
    schedule.add_argument("--data-only", action="store_true",
                          help="refresh the recipe's dataset on the cron schedule instead of running it (a new version is announced to --on-new-data schedules)")
    schedule.add_argument("--timezone", default="UTC", help="the IANA time zone of the cron line (default: UTC)")
    schedule.add_argument("--pool", default=DEFAULT_POOL, help=f"the work pool whose workers run it (default: {DEFAULT_POOL}; created as a process pool if missing)")
    workdir_arg(schedule)
    schedules = sub.add_parser("schedules", help="list the scheduled recipes and their next runs")
    workdir_arg(schedules)


def _settings(args: argparse.Namespace):
    from mmops.settings import Settings, export_library_environment

    settings = Settings.for_workdir(args.workdir)
    if not settings.prefect_api_url:
        raise MmopsError(NO_SERVER)
    settings.workdir.mkdir(parents=True, exist_ok=True)  # Prefect keeps its home there
    export_library_environment(settings)
    return settings


def cmd_schedule(args: argparse.Namespace) -> int:
    from mmops.recipe import load_recipe

    if args.cron is None and not args.on_new_data:
        raise MmopsError("say when it runs: --cron '...' (five cron fields), --on-new-data, or both")
    if args.data_only and (args.cron is None or args.on_new_data):
        raise MmopsError("--data-only refreshes the dataset on a --cron schedule; it cannot wait for new data itself (leave out --on-new-data)")
    loaded = load_recipe(args.recipe)  # a bad recipe is refused before the server hears of it
    settings = _settings(args)  # before Prefect is imported: it reads its settings once, then
    schedule = _cron(args.cron, args.timezone) if args.cron is not None else None
    from flows.deployments import schedule_recipe

    dataset = loaded.recipe.data.name
    deployment_id = schedule_recipe(loaded.recipe.name, Path(args.recipe), settings.workdir, args.pool, schedule,
                                    dataset if args.on_new_data else None, args.data_only)
    when = " and ".join(filter(None, [f"at '{args.cron}' {args.timezone}" if args.cron else "", f"on new versions of dataset {dataset}" if args.on_new_data else ""]))
    what = f"dataset refresh of {loaded.recipe.name}" if args.data_only else loaded.recipe.name
    print(f"scheduled {what} ({args.recipe}) {when} on pool {args.pool}: deployment {deployment_id}")
    print(f"runs start when a worker polls the pool: prefect worker start --pool {args.pool}")
    return 0


def _cron(cron: str, timezone: str):
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        return CronSchedule(cron=cron, timezone=timezone)
    except (ValidationError, ValueError) as error:
        reasons = "; ".join(e["msg"] for e in error.errors()) if isinstance(error, ValidationError) else str(error)
        raise MmopsError(f"--cron {cron!r} --timezone {timezone!r}: {reasons}; allowed: five cron fields "
                         "(minute hour day-of-month month day-of-week, e.g. '0 2 * * *') and an IANA time zone") from None


def cmd_schedules(args: argparse.Namespace) -> int:
    _settings(args)
    from flows.deployments import scheduled_recipes

    rows = scheduled_recipes()
    if not rows:
        print("no scheduled recipes (mmops schedule RECIPE --cron '...' adds one)")
    for row in rows:
        state = "paused" if row.paused else f"next {row.next_run:%Y-%m-%d %H:%M %Z}" if row.next_run else "no run scheduled yet"
        when = "  ".join(filter(None, [f"'{row.cron}' {row.timezone}" if row.cron else "", f"on new {row.on_new_data} data" if row.on_new_data else ""]))
        print(f"{row.deployment}  {when}  pool {row.pool}  {state}\n  {row.recipe} -> {row.workdir}")
    return 0


COMMANDS = {"schedule": cmd_schedule, "schedules": cmd_schedules}
