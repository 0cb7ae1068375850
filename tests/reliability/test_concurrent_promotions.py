"""Promotions and rollbacks racing on PostgreSQL (the lineage store and MLflow's registry both there): whatever
order they land in, exactly one version is production, in MLflow and in the store, and every change is an event
whose `previous` is the version the change before it left in production, in the store and the audit log alike."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from mmops.errors import RegistryError
from mmops.settings import Settings
from registry.access import Actor
from registry.audit import read_events
from registry.lineage import LineageStore, ModelVersion, alias_timeline
from registry.model_versions import PRODUCTION, STATUS_TAG, alias_version
from registry.promotion import PromotionWorkflow
from registry.tracking import client_for
from tests.registry.lineage.conftest import LineageBuilder
from tests.services import postgres_database

pytestmark = pytest.mark.slow
NAME = "shapes-llava"
RACERS = 8
ALICE = Actor("alice", frozenset({"promote"}), authenticated=True)


@pytest.fixture
def stack(tmp_path: Path, postgres_admin):
    with postgres_database(postgres_admin, "mlflow") as tracking_uri, postgres_database(postgres_admin, "lineage") as lineage_url:
        settings = Settings.for_workdir(tmp_path / "work", env={"MMOPS_TRACKING_URI": tracking_uri, "MMOPS_LINEAGE_URL": lineage_url})
        store = LineageStore(lineage_url)
        store.upgrade()
        client = client_for(settings)
        exp = client.create_experiment(NAME, artifact_location=(tmp_path / "artifacts").as_uri())
        client.create_registered_model(NAME)
        builder = LineageBuilder(store)
        for number in range(1, 5):
            run = client.create_run(exp)
            client.create_model_version(NAME, source=(tmp_path / "artifacts").as_uri(), run_id=run.info.run_id)
            builder.llava(version=str(number))
        try:
            yield settings, store, client
        finally:
            store.dispose()


def test_racing_promotions_and_rollbacks_leave_one_production_and_an_unbroken_chain_of_events(stack):
    settings, store, client = stack
    PromotionWorkflow(store, client, settings.audit_log).promote(ALICE, NAME, "1", "baseline")
    start = threading.Barrier(RACERS)
    unexpected: list[BaseException] = []
    refused: list[str] = []

    def race(index: int) -> None:
        own = LineageStore(settings.lineage_url)  # each racer its own connections, as separate processes would have
        try:
            workflow = PromotionWorkflow(own, client_for(settings), settings.audit_log)
            start.wait()
            if index % 2:
                workflow.rollback(ALICE, NAME, f"racer {index} rolls back")
            else:
                workflow.promote(ALICE, NAME, str(index // 2 % 3 + 2), f"racer {index} promotes")
        except RegistryError as error:  # a rollback with nothing before it to return to is refused, recording nothing
            refused.append(str(error))
        except BaseException as error:  # noqa: BLE001 - reported below
            unexpected.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not unexpected, unexpected
    assert all("no earlier production version" in reason or "no production version" in reason for reason in refused)

    with store.session() as session:
        events = [(e.action, e.version, e.previous) for e in alias_timeline(session, NAME)]
        in_production = list(session.scalars(select(ModelVersion.version).where(ModelVersion.name == NAME, ModelVersion.status == "production")))
    assert len(events) == 1 + RACERS - len(refused)
    for before, after in zip(events, events[1:]):
        assert after[2] == before[1], f"{after} does not follow {before}: a change saw a production version that was no longer there"
    final = events[-1][1]
    assert in_production == [final] and alias_version(client, NAME, PRODUCTION) == final
    tagged = [str(v.version) for v in client.search_model_versions(f"name='{NAME}'") if v.tags.get(STATUS_TAG) == "production"]
    assert tagged == [final], "exactly one version carries the production tag"
    audit = [(e["action"], e["version"], e["previous"]) for e in read_events(settings.audit_log, NAME)]
    assert audit == [(str(action), version, previous) for action, version, previous in events], "the audit log tells the same story in the same order"
