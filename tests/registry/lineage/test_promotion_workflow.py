"""The promotion workflow on a real MLflow registry and a real lineage store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from mmops.errors import RegistryError
from mmops.settings import Settings
from registry.access import AccessError, Actor
from registry.audit import read_events
from registry.lineage import LineageStore, ModelVersion, alias_timeline, production_version
from registry.model_versions import PRODUCTION, alias_version
from registry.promotion import PromotionWorkflow
from registry.tracking import client_for

NAME = "shapes-llava"
ALICE = Actor("alice", frozenset({"promote"}), authenticated=True)
BOB = Actor("bob", frozenset({"approve"}), authenticated=True)
CAROL = Actor("carol", frozenset({"promote", "approve"}), authenticated=True)


@pytest.fixture
def registry(tmp_path: Path, builder, store: LineageStore):
    """Versions 1-3 of shapes-llava in MLflow (SQLite) and in the lineage store."""
    settings = Settings.for_workdir(tmp_path / "work", env={})
    client = client_for(settings)
    exp = client.create_experiment(NAME, artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model(NAME)
    for number, em in enumerate((0.6, 0.7, 0.8), start=1):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "vqa_exact_match", em)
        client.create_model_version(NAME, source=(tmp_path / "artifacts").as_uri(), run_id=run.info.run_id)
        builder.llava(version=str(number), vqa_exact_match=em)
    return settings, PromotionWorkflow(store, client, settings.audit_log)


def _timeline(store: LineageStore) -> list[tuple[str, str | None, str | None, str]]:
    with store.session() as session:
        return [(c.action, c.version, c.previous, c.actor) for c in alias_timeline(session, NAME)]


def _production_statuses(store: LineageStore) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(ModelVersion.version).where(ModelVersion.status == "production")))


def test_promote_and_rollback_move_mlflow_and_the_store_together(registry, store):
    settings, workflow = registry
    workflow.promote(ALICE, NAME, "1", "first")
    workflow.promote(ALICE, NAME, "3", "better", evidence={"vqa_exact_match": 0.8})
    event = workflow.rollback(ALICE, NAME, "regression in review")
    assert (event["version"], event["previous"]) == ("1", "3")
    assert alias_version(workflow.client, NAME, PRODUCTION) == "1"
    assert _timeline(store) == [("promote", "1", None, "alice"), ("promote", "3", "1", "alice"), ("rollback", "1", "3", "alice")]
    assert _production_statuses(store) == ["1"]
    assert [e["action"] for e in read_events(settings.audit_log, NAME)] == ["promote", "promote", "rollback"]
    with pytest.raises(RegistryError, match="no earlier production version"):
        workflow.rollback(ALICE, NAME, "again")


def test_request_then_approval_by_another_user_promotes(registry, store):
    settings, workflow = registry
    workflow.promote(ALICE, NAME, "1", "first")
    request = workflow.request(ALICE, NAME, "2", "better on colour", evidence={"vqa_exact_match": 0.7})
    assert [r.id for r in workflow.pending(NAME)] == [request.id]
    assert alias_version(workflow.client, NAME, PRODUCTION) == "1"  # a request moves nothing
    event = workflow.approve(BOB, NAME, request.id, "checked the samples")
    assert (event["version"], event["previous"], event["actor"]) == ("2", "1", "bob")
    assert event["evidence"]["vqa_exact_match"] == 0.7 and event["evidence"]["requested_by"] == "alice"
    assert alias_version(workflow.client, NAME, PRODUCTION) == "2"
    assert workflow.pending(NAME) == []
    assert [t[0] for t in _timeline(store)] == ["promote", "request", "approve", "promote"]
    with store.session() as session:
        assert production_version(session, NAME).version == "2"
    assert workflow.client.get_model_version(NAME, "2").tags["mmops.promotion_request"] == str(request.id)


def test_approval_rules(registry, store):
    _, workflow = registry
    request = workflow.request(CAROL, NAME, "3", "try it")
    with pytest.raises(AccessError, match="'alice' may not approve"):
        workflow.approve(ALICE, NAME, request.id, "looks fine")
    with pytest.raises(AccessError, match="requested #.* and may not approve it too"):
        workflow.approve(CAROL, NAME, request.id, "my own")
    with pytest.raises(RegistryError, match=rf"no pending promotion request #999 \(pending: #{request.id} \(v3\)\)"):
        workflow.approve(BOB, NAME, 999, "which one?")
    with pytest.raises(AccessError, match="'bob' may not request"):
        workflow.request(BOB, NAME, "2", "approvers do not request")
    with pytest.raises(RegistryError, match="needs a reason"):
        workflow.approve(BOB, NAME, request.id, "  ")
    local = Actor("someone", frozenset({"promote"}))
    with pytest.raises(AccessError, match="needs the role 'approve' \\(sign in"):
        workflow.approve(local, NAME, request.id, "not signed in")
    assert alias_version(workflow.client, NAME, PRODUCTION) is None
    assert [t[0] for t in _timeline(store)] == ["request"]  # refused actions leave no trace


def test_a_move_mlflow_refuses_records_nothing(registry, store, builder):
    _, workflow = registry
    builder.llava(version="9")  # known to the store, never registered in MLflow
    with pytest.raises(RegistryError, match="has no version '9'"):
        workflow.promote(ALICE, NAME, "9", "not in MLflow")
    with pytest.raises(Exception, match="no version '7'|versions"):
        workflow.promote(ALICE, NAME, "7", "nowhere")
    assert _timeline(store) == []
    assert _production_statuses(store) == []


def test_racing_promotions_end_with_one_production_and_both_events_in_order(registry, store, lineage_url, tmp_path):
    settings, workflow = registry
    workflow.promote(ALICE, NAME, "1", "baseline")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        own_store = LineageStore(lineage_url)  # each racer has its own connections, as two processes would
        try:
            racer = PromotionWorkflow(own_store, client_for(settings), settings.audit_log)
            start.wait()
            racer.promote(ALICE, NAME, version, f"race {version}")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            own_store.dispose()

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    timeline = _timeline(store)
    first, second = timeline[1], timeline[2]
    assert {first[1], second[1]} == {"2", "3"}
    assert first[2] == "1" and second[2] == first[1]  # the second saw the first's result
    assert alias_version(workflow.client, NAME, PRODUCTION) == second[1]
    assert _production_statuses(store) == [second[1]]
    audit = [e for e in read_events(settings.audit_log, NAME) if e["action"] == "promote"]
    assert [(e["version"], e["previous"]) for e in audit] == [("1", None), (first[1], "1"), (second[1], first[1])]


def test_a_request_overtaken_by_a_promotion_is_no_longer_pending(registry):
    _, workflow = registry
    workflow.promote(ALICE, NAME, "2", "baseline")
    request = workflow.request(ALICE, NAME, "1", "v1 please")
    workflow.promote(CAROL, NAME, "1", "did it myself")
    assert workflow.pending(NAME) == []
    with pytest.raises(RegistryError, match=f"no pending promotion request #{request.id}"):
        workflow.approve(BOB, NAME, request.id, "too late")
    workflow.rollback(ALICE, NAME, "back to 2")
    assert workflow.pending(NAME) == [], "a request stays settled once its version has been promoted"
