"""The promotion workflow: promote, request, approve and roll back a model's `production` alias.

Each change is one transaction in the lineage store that holds the model's
lock (an advisory lock on PostgreSQL, the write lock on SQLite): the current
production version is read, the event recorded, and the MLflow alias moved
inside it. If MLflow refuses, the event is rolled back; if the commit fails
after MLflow moved, the caller sees the error and the audit log holds the move.
Two promotions racing therefore end with one production version and both
events in order, the second naming the first as the version it replaced.

Who may do what is the caller's Actor (registry.access): promoting, rolling
back and requesting need the role `promote`; approving needs `approve`, and
nobody approves their own request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmops.errors import RegistryError
from registry import lineage
from registry.access import AccessError, Actor
from registry.audit import append_event
from registry.lineage import LineageError, LineageStore
from registry.lineage.schema import AliasAction, AliasEvent, ModelVersion
from registry.model_versions import (
    PRODUCTION,
    alias_version,
    get_version,
    promote,
    rollback,
)

REQUEST_TAG = "mmops.promotion_request"


@dataclass(frozen=True)
class PromotionRequest:
    id: int
    model: str
    version: str
    requester: str
    reason: str
    evidence: dict[str, Any]
    at: datetime


class PromotionWorkflow:
    """Promotions of the models in one lineage store and one MLflow registry."""

    def __init__(self, store: LineageStore, client: MlflowClient, audit_log: Path) -> None:
        self.store, self.client, self.audit_log = store, client, audit_log

    def promote(self, actor: Actor, name: str, version: str, reason: str, evidence: dict | None = None) -> dict[str, Any]:
        actor.require("promote", f"promote {name}")
        _need_reason(reason, "a promotion")
        with self.store.locked_session(_lock_key(name)) as session:
            return self._promote(session, actor.name, name, version, reason, evidence)

    def rollback(self, actor: Actor, name: str, reason: str) -> dict[str, Any]:
        actor.require("promote", f"roll back {name}")
        _need_reason(reason, "a rollback")
        with self.store.locked_session(_lock_key(name)) as session:
            current = alias_version(self.client, name, PRODUCTION)
            if current is None:
                raise RegistryError(f"model {name!r} has no production version to roll back")
            stack = lineage.production_stack(session, name)
            if len(stack) < 2 or stack[-1] != current:
                raise RegistryError(
                    f"model {name!r}: no earlier production version to return to (history: {stack or 'empty'})"
                )
            target = stack[-2]
            self._record(session, name, AliasAction.ROLLBACK, target, current, actor.name, reason, None)
            return rollback(self.client, self.audit_log, name, reason, actor.name, target=target)

    def request(self, actor: Actor, name: str, version: str, reason: str, evidence: dict | None = None) -> PromotionRequest:
        """Ask for `version` to become production; an approver's approval carries it out."""
        actor.require("promote", f"request a promotion of {name}")
        _need_reason(reason, "a promotion request")
        with self.store.locked_session(_lock_key(name)) as session:
            number = str(get_version(self.client, name, version).version)
            current = alias_version(self.client, name, PRODUCTION)
            if number == current:
                raise RegistryError(f"{name} version {number} is already in production")
            event = self._record(session, name, AliasAction.REQUEST, number, current, actor.name, reason, evidence)
            self.client.set_model_version_tag(name, number, REQUEST_TAG, str(event.id))
            append_event(self.audit_log, {"action": "request", "model": name, "version": number, "previous": current,
                                          "actor": actor.name, "reason": reason, "evidence": evidence or {}, "request": event.id})
            return _request(event, number)

    def approve(self, actor: Actor, name: str, request_id: int, reason: str) -> dict[str, Any]:
        """Approve a pending request: record the approval and promote its version, in one transaction."""
        actor.require("approve", f"approve promotions of {name}")
        _need_reason(reason, "an approval")
        with self.store.locked_session(_lock_key(name)) as session:
            pending = {r.id: r for r in pending_requests(session, name)}
            if request_id not in pending:
                known = ", ".join(f"#{i} (v{r.version})" for i, r in pending.items()) or "none"
                raise RegistryError(f"{name}: no pending promotion request #{request_id} (pending: {known})")
            request = pending[request_id]
            if request.requester == actor.name:
                raise AccessError(f"{actor.name!r} requested #{request_id} and may not approve it too; another approver must")
            current = alias_version(self.client, name, PRODUCTION)
            if request.version == current:
                raise RegistryError(
                    f"{name}: request #{request_id} asks for version {request.version}, which is already in production"
                )
            approval = {"request": request_id, "requested_by": request.requester, "request_reason": request.reason}
            self._record(session, name, AliasAction.APPROVE, request.version, current, actor.name, reason, approval)
            evidence = {**request.evidence, **approval, "approved_by": actor.name}
            return self._promote(session, actor.name, name, request.version, f"{reason} (approves #{request_id})", evidence)

    def pending(self, name: str) -> list[PromotionRequest]:
        with self.store.session() as session:
            return pending_requests(session, name)

    def _promote(self, session: Session, actor: str, name: str, version: str, reason: str, evidence: dict | None) -> dict[str, Any]:
        number = str(get_version(self.client, name, version).version)
        current = alias_version(self.client, name, PRODUCTION)
        self._record(session, name, AliasAction.PROMOTE, number, current, actor, reason, evidence)
        return promote(self.client, self.audit_log, name, number, reason, actor, evidence)

    @staticmethod
    def _record(
        session: Session, name: str, action: AliasAction, version: str, previous: str | None,
        actor: str, reason: str, evidence: dict | None,
    ) -> AliasEvent:
        target = lineage.find_model_version(session, name, version)  # a version the store never saw is refused
        before = None
        if previous is not None:
            try:
                before = lineage.find_model_version(session, name, previous)
            except LineageError:
                before = None  # registered before this workdir had a lineage store
        event = lineage.record_alias_event(session, name, PRODUCTION, action, target, before, actor, reason, evidence)
        session.flush()  # the event's id, and the write lock on SQLite
        return event


def pending_requests(session: Session, name: str) -> list[PromotionRequest]:
    """Requests with no approval yet whose version has not reached production since, oldest first."""
    rows = session.execute(
        select(AliasEvent, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == AliasEvent.model_version_id)
        .where(AliasEvent.model_name == name, AliasEvent.action.in_([AliasAction.REQUEST, AliasAction.APPROVE]))
        .order_by(AliasEvent.id)
    ).all()
    approved = {event.evidence.get("request") for event, _ in rows if event.action == AliasAction.APPROVE}
    promoted_after = _last_promotion_ids(session, name)
    return [
        _request(event, version)
        for event, version in rows
        if event.action == AliasAction.REQUEST and event.id not in approved and promoted_after.get(version, 0) < event.id
    ]


def _last_promotion_ids(session: Session, name: str) -> dict[str, int]:
    """version -> id of the last event that made it production (a promotion or a rollback to it)."""
    rows = session.execute(
        select(ModelVersion.version, func.max(AliasEvent.id))
        .join(ModelVersion, ModelVersion.id == AliasEvent.model_version_id)
        .where(AliasEvent.model_name == name, AliasEvent.action.in_([AliasAction.PROMOTE, AliasAction.ROLLBACK]))
        .group_by(ModelVersion.version)
    ).all()
    return {version: last for version, last in rows}


def _request(event: AliasEvent, version: str) -> PromotionRequest:
    return PromotionRequest(event.id, event.model_name, version, event.actor, event.reason, dict(event.evidence), event.at)


def _lock_key(name: str) -> str:
    return f"production:{name}"


def _need_reason(reason: str, what: str) -> None:
    if not reason.strip():
        raise RegistryError(f"{what} needs a reason (--reason '...')")
