"""`mmops config`: the effective settings, where each came from, secrets hidden."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def add_parsers(sub: argparse._SubParsersAction, workdir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    config = sub.add_parser("config", help="show the effective settings (environment, settings file, defaults) with secrets redacted")
    config.add_argument("--json", action="store_true", help="print JSON for machines")
    workdir_arg(config)


def cmd_config(args: argparse.Namespace) -> int:
    from mmops.settings import Settings

    settings = Settings.for_workdir(args.workdir)
    shown = settings.shown()
    rows = {name: {"value": value, "from": settings.sources.get(name, "the --workdir argument")} for name, value in shown.items()}
    if settings.uses_s3:
        rows["s3_credentials"] = {"value": _credential_source(), "from": "boto3's credential chain"}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(map(len, rows))
    for name, row in rows.items():
        print(f"{name:<{width}}  {row['value'] or '-'}  [{row['from']}]")
    return 0


def _credential_source() -> str:
    """How boto3 would sign S3 requests (never the keys themselves)."""
    import boto3

    credentials = boto3.Session().get_credentials()
    return f"found ({credentials.method}; values hidden)" if credentials else "none found: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role"


COMMANDS = {"config": cmd_config}
