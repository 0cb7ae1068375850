"""The Promote page's logic: who is signed in, what they may do, and each change made through the promotion workflow.

Everything the page shows is read through the read-only stores, like every
other page. Only an action opens the workdir's lineage store writable and a
normal MLflow client, builds registry.promotion's PromotionWorkflow on them
(as `mmops promote` does), and closes the store when the action ends: the
workflow checks the roles, serialises the change per model, moves the alias
and writes the lineage event and the audit log.
"""

from __future__ import annotations

import hmac
import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from dashboards.display import utc_text
from dashboards.errors import DashboardError
from mmops.settings import Settings
from registry.access import AccessList, Actor, hash_token
from registry.lineage import open_store
from registry.model_versions import PRODUCTION, alias_version
from registry.promotion import PromotionRequest, PromotionWorkflow
from registry.tracking import client_for


@dataclass(frozen=True)
class SignedIn:
    """Who signed in on this browser session, and the hash of their token, checked against the access file on every run."""

    actor: Actor
    token_sha256: str


@dataclass(frozen=True)
class AllowedActions:
    """What a signed-in user's roles let them do on one model (role promote: the first three; approve: the last two)."""

    request: bool = False
    promote: bool = False
    rollback: bool = False
    approvable: tuple[PromotionRequest, ...] = ()  # pending requests by other users
    own_requests: tuple[PromotionRequest, ...] = ()  # pending requests by this approver, which another must approve


@dataclass(frozen=True)
class RollbackOption:
    target: str | None  # the version a rollback returns to; None when there is none
    explanation: str


def request_table(pending: Sequence[PromotionRequest]) -> list[dict[str, str]]:
    """One row a pending request: its number, version, who asked, when and why."""
    return [
        {"request": f"#{r.id}", "version": r.version, "requested by": r.requester, "when": utc_text(r.at), "reason": r.reason}
        for r in pending
    ]


def add_user_command(workdir: Path) -> str:
    """The command that gives a workdir its first user, who may promote and approve."""
    return f"mmops users add NAME --role promote --role approve --workdir {shlex.quote(str(workdir))}"


def sign_in(access: AccessList, user: str, token: str) -> SignedIn:
    """The user, if the token is theirs; AccessError otherwise (the same one for unknown users and wrong tokens).

    Blanks around either are dropped: tokens are URL-safe base64, so a blank can only come from pasting.
    """
    token = token.strip()
    return SignedIn(access.authenticate(user.strip(), token), hash_token(token))


def current_actor(access: AccessList, signed_in: SignedIn) -> Actor | None:
    """The signed-in user with the roles the access file gives them now; None once they are removed or given a new token."""
    entry = access.users.get(signed_in.actor.name)
    if entry is None or not hmac.compare_digest(entry.token_sha256, signed_in.token_sha256):
        return None
    return Actor(signed_in.actor.name, frozenset(entry.roles), authenticated=True)


def allowed_actions(actor: Actor | None, pending: Sequence[PromotionRequest]) -> AllowedActions:
    if actor is None or not actor.authenticated:
        return AllowedActions()
    may_promote, may_approve = "promote" in actor.roles, "approve" in actor.roles
    return AllowedActions(
        request=may_promote,
        promote=may_promote,
        rollback=may_promote,
        approvable=tuple(r for r in pending if r.requester != actor.name) if may_approve else (),
        own_requests=tuple(r for r in pending if r.requester == actor.name) if may_approve else (),
    )


def rollback_option(stack: Sequence[str], current: str | None) -> RollbackOption:
    """Where a rollback would take production (the workflow's own rule: the version below the current one on the stack)."""
    if current is None:
        return RollbackOption(None, "No version is in production, so there is nothing to roll back.")
    if len(stack) < 2 or stack[-1] != current:
        history = " -> ".join(f"v{v}" for v in stack) or "none"
        return RollbackOption(None, f"No earlier production version to return to (production history: {history}).")
    return RollbackOption(stack[-2], f"Returns production from v{current} to v{stack[-2]}, the version before it.")


def version_evidence(metrics: Mapping[str, Mapping[str, float]], version: str, production: str | None) -> dict[str, Any]:
    """What a request or promotion made here records as evidence: the version's scores beside production's."""
    return {
        "via": "dashboard",
        "candidate": dict(metrics.get(version, {})),
        "production_version": production,
        "production": None if production is None else dict(metrics.get(production, {})),
    }


def checked_reason(reason: str, what: str) -> str:
    """The reason without surrounding blanks; an empty one is refused before anything is opened."""
    if not reason.strip():
        raise DashboardError(f"{what} needs a reason: say why, for the alias timeline and the audit log")
    return reason.strip()


@contextmanager
def promotion_workflow(settings: Settings) -> Iterator[PromotionWorkflow]:
    """A workflow on the workdir's lineage store opened writable and a normal MLflow client, for one action.

    The store's connections are closed when the block ends. MLflow or database
    failures that are not mmops errors become DashboardErrors, for the page to show.
    """
    try:
        with open_store(settings.lineage_url) as store:
            yield PromotionWorkflow(store, client_for(settings), settings.audit_log)
    except MlflowException as error:
        raise DashboardError(f"MLflow refused the change: {error.message}") from None
    except SQLAlchemyError as error:
        raise DashboardError(f"the lineage store refused the change: {getattr(error, 'orig', None) or error}") from None


def request_promotion(
    settings: Settings, actor: Actor, name: str, version: str, reason: str, evidence: dict[str, Any]
) -> str:
    reason = checked_reason(reason, "A promotion request")
    with promotion_workflow(settings) as workflow:
        request = workflow.request(actor, name, version, reason, evidence)
        production = alias_version(workflow.client, name, PRODUCTION)
    return (f"{name}: request #{request.id} to promote v{request.version} is waiting for an approver; "
            f"production stays {_shown(production)}.")


def promote_now(settings: Settings, actor: Actor, name: str, version: str, reason: str, evidence: dict[str, Any]) -> str:
    reason = checked_reason(reason, "A promotion")
    with promotion_workflow(settings) as workflow:
        event = workflow.promote(actor, name, version, reason, evidence)
    return f"{name}: production -> v{event['version']} (was {_shown(event['previous'])}), by {actor.name}."


def roll_back(settings: Settings, actor: Actor, name: str, reason: str) -> str:
    reason = checked_reason(reason, "A rollback")
    with promotion_workflow(settings) as workflow:
        event = workflow.rollback(actor, name, reason)
    return f"{name}: production rolled back to v{event['version']} (from {_shown(event['previous'])}), by {actor.name}."


def approve_request(settings: Settings, actor: Actor, name: str, request_id: int, reason: str) -> str:
    reason = checked_reason(reason, "An approval")
    with promotion_workflow(settings) as workflow:
        event = workflow.approve(actor, name, request_id, reason)
    return (f"{name}: request #{request_id} approved by {actor.name}; "
            f"production -> v{event['version']} (was {_shown(event['previous'])}).")


def _shown(version: str | None) -> str:
    return "none" if version is None else f"v{version}"

