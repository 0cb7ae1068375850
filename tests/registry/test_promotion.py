"""Gates, promotion and rollback against a real MLflow registry on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmops.errors import RegistryError
from mmops.settings import Settings
from registry.audit import read_events
from registry.model_versions import (
    PRODUCTION,
    STATUS_TAG,
    evaluate_gate,
    production_history,
    promote,
    rollback,
    version_by_alias,
    version_metrics,
)
from registry.tracking import client_for


def test_gate_thresholds_and_production_comparison():
    passed = evaluate_gate({"em": 0.5}, ["em"], 0.0, {"em": 0.8}, {"em": 0.8}, "1")
    assert passed.passed and passed.evidence["production_version"] == "1"
    low = evaluate_gate({"em": 0.9}, [], 0.0, {"em": 0.8}, None)
    assert not low.passed and low.reasons == ("em: 0.8000 < threshold 0.9",)
    worse = evaluate_gate({}, ["em"], 0.01, {"em": 0.78}, {"em": 0.8}, "3")
    assert not worse.passed and "worse than production v3" in worse.reasons[0]
    within = evaluate_gate({}, ["em"], 0.05, {"em": 0.78}, {"em": 0.8}, "3")
    assert within.passed
    missing = evaluate_gate({"iou": 0.1}, [], 0.0, {"em": 1.0}, None)
    assert not missing.passed and "not measured" in missing.reasons[0]


@pytest.fixture
def registry(tmp_path: Path):
    settings = Settings.for_workdir(tmp_path, env={})
    client = client_for(settings)
    exp = client.create_experiment("m", artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model("m")
    for em in (0.7, 0.8, 0.9):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "vqa_exact_match", em)
        client.create_model_version("m", source=(tmp_path / "artifacts").as_uri(), run_id=run.info.run_id)
    return settings, client


def test_promote_then_rollback_returns_to_the_previous_version(registry):
    settings, client = registry
    promote(client, settings.audit_log, "m", "1", "first", "alice")
    promote(client, settings.audit_log, "m", "3", "better", "bob", evidence={"em": 0.9})
    assert str(version_by_alias(client, "m", PRODUCTION).version) == "3"
    assert client.get_model_version("m", "1").tags[STATUS_TAG] == "archived"
    assert version_metrics(client, version_by_alias(client, "m", PRODUCTION)) == {"vqa_exact_match": 0.9}

    event = rollback(client, settings.audit_log, "m", "regression seen in review", "carol")
    assert event["version"] == "1" and event["previous"] == "3"
    assert str(version_by_alias(client, "m", PRODUCTION).version) == "1"
    assert [client.get_model_version("m", v).tags[STATUS_TAG] for v in ("1", "3")] == ["production", "archived"]
    events = read_events(settings.audit_log, "m")
    assert [(e["action"], e["version"], e["actor"]) for e in events] == [
        ("promote", "1", "alice"), ("promote", "3", "bob"), ("rollback", "1", "carol"),
    ]
    assert events[1]["previous"] == "1" and events[1]["evidence"] == {"em": 0.9} and events[1]["reason"] == "better"
    assert production_history(settings.audit_log, "m") == ["1"]
    with pytest.raises(RegistryError, match="no earlier production version"):
        rollback(client, settings.audit_log, "m", "again", "carol")


def test_refusals_name_what_is_wrong(registry):
    settings, client = registry
    with pytest.raises(RegistryError, match=r"has no version '7' \(versions: 1, 2, 3\)"):
        promote(client, settings.audit_log, "m", "7", "why not", "alice")
    with pytest.raises(RegistryError, match="needs a reason"):
        promote(client, settings.audit_log, "m", "1", "  ", "alice")
    with pytest.raises(RegistryError, match="no production version"):
        rollback(client, settings.audit_log, "m", "nothing to undo", "alice")
    assert read_events(settings.audit_log) == []
