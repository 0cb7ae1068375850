"""Recording: content-addressed nodes are shared, edges are checked, alias events keep statuses in step."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.lineage import (
    DatasetVersion,
    LineageError,
    LineageStore,
    ModelVersion,
    Recipe,
    dataset_version,
    find_model_version,
    finish_pipeline_run,
    production_version,
    recipe,
    record_alias_event,
    record_model_version,
    record_stage_run,
)
from registry.lineage.recording import shorten
from registry.lineage.schema import Checkpoint, PipelineRun, StageParentModel, StageRun


def production(session: Session) -> str | None:
    found = production_version(session, "shapes-llava")
    return None if found is None else found.version


def test_content_addressed_nodes_are_recorded_once(store: LineageStore):
    with store.session() as session:
        first = dataset_version(session, "captions", "a" * 32, "rev1", "data/captions")
        again = dataset_version(session, "captions", "a" * 32, "rev1", "data/captions")
        other_rev = dataset_version(
            session, "captions", "a" * 32, "rev2", "data/captions"
        )
    assert again.id == first.id and other_rev.id != first.id
    with store.session() as session:
        assert (
            dataset_version(session, "captions", "a" * 32, "rev1", "data/captions").id
            == first.id
        )
        assert session.scalar(select(func.count()).select_from(DatasetVersion)) == 2


def test_two_transactions_recording_the_same_recipe_share_one_row(store: LineageStore):
    """The second insert waits for the first transaction, hits the unique sha256, and returns the first's row."""
    found: list[int] = []
    with store.session() as first:
        mine = recipe(first, "f" * 64, "tiny", "llava", "name: tiny\n")

        def second() -> None:
            with store.session() as session:
                found.append(
                    recipe(session, "f" * 64, "tiny", "llava", "name: tiny\n").id
                )

        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(
            0.5
        )  # let the second transaction reach its insert (or its BEGIN, on SQLite) and wait there
    racer.join(timeout=30)
    assert found == [mine.id]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Recipe)) == 1


def test_a_stage_records_its_inputs_as_edges(store: LineageStore, builder):
    clip = builder.clip("1")
    llava = builder.llava("1", vision_from=clip)
    with store.session() as session:
        align = session.scalars(
            select(StageRun).where(
                StageRun.pipeline_run_id == llava.pipeline_run_id,
                StageRun.name == "align",
            )
        ).one()
        edges = session.scalars(
            select(StageParentModel).where(StageParentModel.stage_run_id == align.id)
        ).all()
    assert [(e.part, e.model_version_id) for e in edges] == [("vision", clip.id)]
    assert (
        align.metrics == {"steps": 30}
        and align.status == "finished"
        and align.position == 2
    )


def test_a_part_cannot_have_two_parents(store: LineageStore, builder):
    model = builder.clip("1")
    with (
        pytest.raises(LineageError, match=r"parts \['vision'\] are given both"),
        store.session() as session,
    ):
        run = session.get_one(PipelineRun, model.pipeline_run_id)
        checkpoint = session.get_one(Checkpoint, model.checkpoint_id)
        record_stage_run(
            session,
            run,
            "again",
            "caption",
            5,
            None,
            [],
            {"vision": checkpoint},
            {"vision": model},
            None,
            None,
            {},
        )


def test_statuses_outside_the_schema_are_refused_with_the_allowed_ones(
    store: LineageStore, builder
):
    model = builder.clip("1")
    with store.session() as session:
        run = session.get_one(PipelineRun, model.pipeline_run_id)
        with pytest.raises(
            LineageError, match="'done'; allowed: running, finished, failed"
        ):
            record_stage_run(
                session,
                run,
                "x",
                "caption",
                9,
                None,
                [],
                {},
                {},
                None,
                None,
                {},
                status="done",
            )
        with pytest.raises(
            LineageError, match="'demote'; allowed: promote, rollback, archive"
        ):
            record_alias_event(
                session,
                "shapes-clip",
                "production",
                "demote",
                model,
                None,
                "me",
                "why",
                {},
            )


def test_a_pipeline_run_finishes_once(store: LineageStore, builder):
    model = builder.clip("1")
    with store.session() as session:
        run = session.get_one(PipelineRun, model.pipeline_run_id)
        assert run.status == "finished" and run.finished_at is not None
        with pytest.raises(LineageError, match="already finished as 'finished'"):
            finish_pipeline_run(session, run, "failed", "late error")


def test_a_version_is_registered_once(store: LineageStore, builder):
    model = builder.clip("1")
    with (
        pytest.raises(
            LineageError, match="'shapes-clip' version '1' is already recorded"
        ),
        store.session() as s,
    ):
        record_model_version(
            s,
            "shapes-clip",
            "1",
            s.get_one(Checkpoint, model.checkpoint_id),
            s.get_one(PipelineRun, model.pipeline_run_id),
        )


def test_alias_events_move_production_and_archive_what_it_replaces(
    store: LineageStore, builder
):
    v1, v2 = builder.llava("1"), builder.llava("2", vqa_exact_match=0.7)
    with store.session() as session:
        one, two = (find_model_version(session, "shapes-llava", v) for v in ("1", "2"))
        assert production(session) is None
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "promote",
            one,
            None,
            "alice",
            "first",
            {},
        )
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "promote",
            two,
            one,
            "bob",
            "better",
            {"em": 0.7},
        )
        assert (one.status, two.status) == ("archived", "production")
        assert production(session) == "2"
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "rollback",
            one,
            two,
            "carol",
            "regression",
            {},
        )
        assert (one.status, two.status) == ("production", "archived")
        assert production(session) == "1"
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "archive",
            one,
            None,
            "dave",
            "retired",
            {},
        )
        assert production(session) is None
    assert v1.id != v2.id


def test_an_alias_event_must_name_versions_of_its_model(store: LineageStore, builder):
    clip = builder.clip("1")
    with (
        pytest.raises(LineageError, match="names version 1 of 'shapes-clip'"),
        store.session() as session,
    ):
        record_alias_event(
            session,
            "shapes-llava",
            "production",
            "promote",
            clip,
            None,
            "me",
            "why",
            {},
        )


def test_an_unknown_version_names_the_known_ones(store: LineageStore, builder):
    for version in ("1", "2", "10"):
        builder.llava(version)
    builder.clip("1")
    with store.session() as session:
        with pytest.raises(LineageError) as raised:
            find_model_version(session, "shapes-llava", "3")
        assert (
            str(raised.value)
            == "model 'shapes-llava' has no version '3' in the lineage store (versions: 1, 2, 10)"
        )
        with pytest.raises(LineageError) as raised:
            find_model_version(session, "shapes-vit", "1")
        assert "no model 'shapes-vit' (models: shapes-clip, shapes-llava)" in str(
            raised.value
        )
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 4


def test_long_lists_in_errors_are_shortened():
    assert shorten([str(i) for i in range(1, 6)]) == "1, 2, 3, 4, 5"
    many = shorten([str(i) for i in range(1, 25_001)], most=4)
    assert many == "1, 2, ... 24996 more ..., 24999, 25000"
