"""Queries across versions: what a dataset fed, how two versions differ, the alias timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.lineage import (
    LineageError,
    LineageStore,
    alias_timeline,
    dataset_descendants,
    diff_versions,
    find_model_version,
    record_alias_event,
)


def test_a_dataset_feeds_every_stage_downstream_of_it(store: LineageStore, builder):
    builder.llava("1")
    with store.session() as session:
        fed = dataset_descendants(session, builder.md5_of("captions-v1"))
    assert [d.name for d in fed.datasets] == ["captions"]
    # lm never saw the captions; align read them itself and through clip's checkpoint; instruct through align's.
    assert [s.name for s in fed.stages] == ["clip", "align", "instruct"]
    assert [c.stage for c in fed.checkpoints] == ["clip", "align", "instruct"]
    assert [(m.name, m.version) for m in fed.model_versions] == [("shapes-llava", "1")]

    with store.session() as session:
        corpus = dataset_descendants(session, builder.md5_of("corpus-v1"))
    assert [s.name for s in corpus.stages] == ["lm", "align", "instruct"]


def test_a_dataset_feeds_what_was_trained_on_a_version_a_data_stage_wrote_from_it(store: LineageStore, builder):
    builder.bootstrapped()
    with store.session() as session:
        noisy = dataset_descendants(session, builder.md5_of("captions-noisy"))
        bootstrapped = dataset_descendants(session, builder.md5_of("captions-bootstrapped"))
    # capfilt read the noisy captions (and pretrain's weights), wrote the bootstrapped ones, which retrain read
    assert [s.name for s in noisy.stages] == ["pretrain", "capfilt", "retrain"]
    assert [c.stage for c in noisy.checkpoints] == ["pretrain", "retrain"]  # a data stage writes no weights
    assert [(m.name, m.version) for m in noisy.model_versions] == [("shapes-blip", "1")]
    assert [s.name for s in bootstrapped.stages] == ["retrain"]


def test_a_dataset_feeds_models_built_on_a_model_version_it_trained(
    store: LineageStore, builder
):
    clip = builder.clip("1")
    builder.llava("1", vision_from=clip, instruct_data="instruct-v1")
    with store.session() as session:
        fed = dataset_descendants(session, builder.md5_of("captions-v1"))
    assert [(s.pipeline_mlflow_run_id, s.name) for s in fed.stages] == [
        ("mlflow-clip-1", "contrastive"),
        ("mlflow-llava-1", "align"),
        ("mlflow-llava-1", "instruct"),
    ]
    assert [(m.name, m.version) for m in fed.model_versions] == [
        ("shapes-clip", "1"),
        ("shapes-llava", "1"),
    ]

    with store.session() as session:
        instruct_only = dataset_descendants(session, builder.md5_of("instruct-v1"))
    assert [s.name for s in instruct_only.stages] == ["instruct"]
    assert [m.name for m in instruct_only.model_versions] == ["shapes-llava"]


def test_an_unknown_dataset_names_the_known_ones(store: LineageStore, builder):
    builder.clip("1")
    with store.session() as session, pytest.raises(LineageError) as raised:
        dataset_descendants(session, "0" * 32)
    assert f"known: captions {builder.md5_of('captions-v1')})" in str(raised.value)


def test_diff_versions_shows_recipe_data_and_metric_changes(
    store: LineageStore, builder
):
    builder.llava("1")
    builder.llava(
        "2",
        recipe_text=builder.llava_recipe.replace("lr: 0.0002", "lr: 0.0001"),
        instruct_data="instruct-v2",
        vqa_exact_match=0.7,
        vision_from=builder.clip("1"),
    )
    with store.session() as session:
        diff = diff_versions(session, "shapes-llava", "1", "2")
        same = diff_versions(session, "shapes-llava", "1", "1")

    assert "-  - {name: instruct, objective: instruct, lr: 0.0002}" in diff.recipe
    assert "+  - {name: instruct, objective: instruct, lr: 0.0001}" in diff.recipe
    assert diff.recipe.startswith("--- shapes-llava v1: recipe tiny-llava")
    assert diff.data.added == diff.data.removed == ()
    assert [
        (c.name, [d.md5 for d in c.a], [d.md5 for d in c.b]) for c in diff.data.changed
    ] == [
        ("instruct", [builder.md5_of("instruct-v1")], [builder.md5_of("instruct-v2")])
    ]
    assert (
        diff.metrics["vqa_exact_match"].a == 0.62
        and diff.metrics["vqa_exact_match"].b == 0.7
    )
    assert diff.metrics["vqa_exact_match"].delta == pytest.approx(0.08)
    assert diff.metrics["per_type.count"].delta == 0
    assert (
        same.recipe == ""
        and same.data.changed == ()
        and same.metrics["grounding_iou"].delta == 0
    )


def test_diff_versions_reports_datasets_added_and_removed(store: LineageStore, builder):
    builder.llava("1")
    builder.llava("2", instruct_name="grounding", instruct_data="grounding-v1")
    with store.session() as session:
        diff = diff_versions(session, "shapes-llava", "1", "2")
    assert [(d.name, d.md5) for d in diff.data.added] == [
        ("grounding", builder.md5_of("grounding-v1"))
    ]
    assert [(d.name, d.md5) for d in diff.data.removed] == [
        ("instruct", builder.md5_of("instruct-v1"))
    ]
    assert diff.data.changed == () and diff.recipe == ""


def test_the_alias_timeline_is_in_the_order_things_happened(
    store: LineageStore, builder
):
    for version in ("1", "2", "3"):
        builder.llava(version)
    with store.session() as session:
        v1, v2, v3 = (
            find_model_version(session, "shapes-llava", v) for v in ("1", "2", "3")
        )
        assert alias_timeline(session, "shapes-llava") == ()
        record_alias_event(
            session,
            "shapes-llava",
            "candidate",
            "register",
            v3,
            None,
            "pipeline",
            "registered",
            {},
        )
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "promote",
            v2,
            None,
            "alice",
            "first",
            {"em": 0.6},
        )
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "promote",
            v3,
            v2,
            "bob",
            "better",
            {},
        )
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "rollback",
            v2,
            v3,
            "carol",
            "regression",
            {},
        )
    with store.session() as session:
        timeline = alias_timeline(session, "shapes-llava")
        with pytest.raises(LineageError, match="no model 'shapes-vit'"):
            alias_timeline(session, "shapes-vit")
    assert [(e.action, e.alias, e.version, e.previous, e.actor) for e in timeline] == [
        ("register", "candidate", "3", None, "pipeline"),
        ("promote", "production", "2", None, "alice"),
        ("promote", "production", "3", "2", "bob"),
        ("rollback", "production", "2", "3", "carol"),
    ]
    assert timeline[1].evidence == {"em": 0.6} and timeline[3].reason == "regression"
    assert all(e.at.utcoffset() == timedelta(0) for e in timeline)
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)
    assert v1.status == "candidate"
