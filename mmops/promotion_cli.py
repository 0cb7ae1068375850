"""`mmops promote | rollback | request | approve | requests | users`: changing production from the command line.

Who is asking: MMOPS_ACTOR (or the login name). When the workdir has users
(its access file), every change needs that user's token, read from
MMOPS_TOKEN or asked for at the terminal; a workdir without users trusts the
person at the command line to promote and roll back, and has no approvers.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from registry.access import (
    ROLES,
    AccessError,
    Actor,
    add_user,
    load_access,
    local_actor,
)

if TYPE_CHECKING:  # the workflow imports MLflow and torch: only the commands that change production need them
    from registry.promotion import PromotionWorkflow

WorkdirArg = Callable[[argparse.ArgumentParser], None]


def model_name(text: str) -> str:
    """A registered model's name is a recipe's name: checked before any store is opened."""
    from mmops.recipe import NAME

    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a model name; allowed: {NAME.pattern} (a recipe's name: lowercase letters, digits, '-', '_')")
    return text


def add_parsers(sub: argparse._SubParsersAction, workdir_arg: WorkdirArg) -> None:
    promote = sub.add_parser("promote", help="point the production alias at a version, with a reason")
    promote.add_argument("name", type=model_name)
    promote.add_argument("version")
    promote.add_argument("--reason", required=True)
    workdir_arg(promote)

    rollback = sub.add_parser("rollback", help="return production to the version before the current one")
    rollback.add_argument("name", type=model_name)
    rollback.add_argument("--reason", required=True)
    workdir_arg(rollback)

    request = sub.add_parser("request", help="ask for a version to be promoted; an approver carries it out")
    request.add_argument("name", type=model_name)
    request.add_argument("version")
    request.add_argument("--reason", required=True)
    workdir_arg(request)

    approve = sub.add_parser("approve", help="approve a pending promotion request (role 'approve'; not your own)")
    approve.add_argument("name", type=model_name)
    approve.add_argument("request", type=int, help="the request number (see `mmops requests NAME`)")
    approve.add_argument("--reason", required=True)
    workdir_arg(approve)

    requests = sub.add_parser("requests", help="list a model's pending promotion requests")
    requests.add_argument("name", type=model_name)
    workdir_arg(requests)

    users = sub.add_parser("users", help="who may promote and approve in this workdir")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add a user (or give them a new token); prints the token once")
    add.add_argument("user")
    add.add_argument("--role", action="append", choices=ROLES, required=True, help="repeat for several roles")
    workdir_arg(add)
    listed = users_sub.add_parser("list", help="the users and their roles (never their tokens)")
    workdir_arg(listed)


def cmd_promote(args: argparse.Namespace) -> int:
    with _workflow(args) as (workflow, actor):
        event = workflow.promote(actor, args.name, args.version, args.reason)
    print(f"{args.name}: production -> version {event['version']} (was {event['previous']}), by {actor.name}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    with _workflow(args) as (workflow, actor):
        event = workflow.rollback(actor, args.name, args.reason)
    print(f"{args.name}: production rolled back to version {event['version']} (from {event['previous']}), by {actor.name}")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    with _workflow(args) as (workflow, actor):
        request = workflow.request(actor, args.name, args.version, args.reason)
    print(f"{args.name}: request #{request.id} to promote version {request.version}; "
          f"an approver runs: mmops approve {args.name} {request.id} --reason '...'")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    with _workflow(args) as (workflow, actor):
        event = workflow.approve(actor, args.name, args.request, args.reason)
    print(f"{args.name}: request #{args.request} approved by {actor.name}; production -> version {event['version']} "
          f"(was {event['previous']})")
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    with _workflow(args, need_actor=False) as (workflow, _):
        pending = workflow.pending(args.name)
    if not pending:
        print(f"{args.name}: no pending promotion requests")
    for request in pending:
        print(f"#{request.id}  v{request.version}  by {request.requester}  {request.at:%Y-%m-%d %H:%M}  {request.reason}")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from mmops.settings import Settings

    settings = Settings.for_workdir(args.workdir)
    if args.users_command == "add":
        token = add_user(settings.access_file, args.user, args.role)
        print(f"{args.user}: roles {', '.join(sorted(set(args.role)))} in {settings.access_file}")
        print(f"token (shown once; keep it secret, pass it as MMOPS_TOKEN): {token}")
        return 0
    for name, entry in sorted(load_access(settings.access_file).users.items()):
        print(f"{name}: {', '.join(entry.roles)}")
    return 0


@contextmanager
def _workflow(args: argparse.Namespace, need_actor: bool = True) -> Iterator[tuple[PromotionWorkflow, Actor | None]]:
    from mmops.settings import Settings
    from registry.lineage import open_store
    from registry.promotion import PromotionWorkflow
    from registry.tracking import client_for

    settings = Settings.for_workdir(args.workdir)
    settings.require_registry()
    actor = _actor(settings.access_file, settings.actor) if need_actor else None
    with open_store(settings.lineage_url) as store:
        yield PromotionWorkflow(store, client_for(settings), settings.audit_log), actor


def _actor(access_file, name: str) -> Actor:
    access = load_access(access_file)
    local = local_actor(access, name)
    if local is not None:
        return local
    token = os.environ.get("MMOPS_TOKEN")
    if not token and sys.stdin.isatty():
        token = getpass.getpass(f"token for {name}: ")
    if not token:
        raise AccessError(f"{access_file} lists users, so this needs {name!r}'s token: set MMOPS_TOKEN "
                          "(and MMOPS_ACTOR if your login name is not your mmops user)")
    return access.authenticate(name, token)


PROMOTION_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "request": cmd_request,
    "approve": cmd_approve,
    "requests": cmd_requests,
    "users": cmd_users,
}
