"""A model version's full ancestry: its shape, its recursion into parent model versions, and its cost in queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event

from registry.lineage import (
    AncestryNode,
    LineageError,
    LineageStore,
    StageNode,
    ancestry,
    ancestry_dict,
)

CODE_REV = "0123456789abcdef0123456789abcdef01234567"


@contextmanager
def counted_statements(store: LineageStore) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(
        _connection: Connection, _cursor: Any, statement: str, *_args: Any
    ) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def dataset_names(stage: StageNode) -> list[str]:
    return [d.name for d in stage.datasets]


def test_the_ancestry_of_a_llava_version_reaches_every_stage(
    store: LineageStore, builder
):
    builder.llava("1")
    with store.session() as session:
        root = ancestry(session, "shapes-llava", "1")

    assert (root.name, root.version, root.status) == ("shapes-llava", "1", "candidate")
    assert (
        root.pipeline.recipe.name == "tiny-llava"
        and root.pipeline.recipe.family == "llava"
    )
    assert root.pipeline.code_version == CODE_REV and root.pipeline.status == "finished"
    assert (
        root.evaluation is not None
        and root.evaluation.metrics["vqa_exact_match"] == 0.62
    )
    assert (
        root.evaluation.dataset.name == "instruct" and root.evaluation.split == "test"
    )
    assert root.checkpoint.evaluations == (root.evaluation,)

    instruct = root.checkpoint.stage
    assert (instruct.name, instruct.position, dataset_names(instruct)) == (
        "instruct",
        3,
        ["instruct"],
    )
    assert list(instruct.parent_checkpoints) == ["*"] and instruct.parent_models == {}

    align = instruct.parent_checkpoints["*"].stage
    assert (align.name, align.objective, dataset_names(align)) == (
        "align",
        "caption",
        ["captions"],
    )
    assert (
        list(align.parent_checkpoints) == ["language_model", "vision"]
        and align.parent_models == {}
    )

    clip = align.parent_checkpoints["vision"].stage
    lm = align.parent_checkpoints["language_model"].stage
    assert (clip.name, dataset_names(clip), clip.parent_checkpoints) == (
        "clip",
        ["captions"],
        {},
    )
    assert (lm.name, dataset_names(lm), lm.parent_checkpoints) == ("lm", ["corpus"], {})
    assert align.parent_checkpoints["vision"].path == "/work/llava-1/clip.safetensors"
    assert {s.pipeline.mlflow_run_id for s in (instruct, align, clip, lm)} == {
        "mlflow-llava-1"
    }
    assert {d.name for d in root.training_datasets()} == {
        "captions",
        "corpus",
        "instruct",
    }


def test_a_parent_model_version_brings_its_own_full_ancestry(
    store: LineageStore, builder
):
    clip_version = builder.clip("1")
    builder.llava("1", vision_from=clip_version)
    with store.session() as session:
        root = ancestry(session, "shapes-llava", "1")

    align = root.checkpoint.stage.parent_checkpoints["*"].stage
    assert list(align.parent_checkpoints) == ["language_model"]
    assert list(align.parent_models) == ["vision"]
    parent = align.parent_models["vision"]
    assert isinstance(parent, AncestryNode)
    assert (parent.name, parent.version) == ("shapes-clip", "1")
    assert (
        parent.pipeline.recipe.name == "tiny-clip"
        and parent.pipeline.mlflow_run_id == "mlflow-clip-1"
    )
    assert parent.evaluation is not None and parent.evaluation.metrics == {
        "retrieval_r1": 0.7
    }
    contrastive = parent.checkpoint.stage
    assert (contrastive.name, dataset_names(contrastive)) == (
        "contrastive",
        ["captions"],
    )
    assert contrastive.pipeline.recipe.name == "tiny-clip"


def test_ancestry_dict_is_json(store: LineageStore, builder):
    builder.llava("1", vision_from=builder.clip("1"))
    with store.session() as session:
        tree = json.loads(json.dumps(ancestry_dict(session, "shapes-llava", "1")))
    align = tree["checkpoint"]["stage"]["parent_checkpoints"]["*"]["stage"]
    assert align["name"] == "align"
    assert (
        align["parent_models"]["vision"]["checkpoint"]["stage"]["name"] == "contrastive"
    )
    assert datetime.fromisoformat(tree["created_at"]).utcoffset() == timedelta(0)
    assert tree["evaluation"]["metrics"]["per_type"] == {"count": 0.5}


def test_ancestry_costs_the_same_number_of_statements_at_any_depth(
    store: LineageStore, builder
):
    builder.chain(2)
    builder.chain(12)
    cost: dict[int, list[str]] = {}
    for depth in (2, 12):
        with store.session() as session, counted_statements(store) as statements:
            root = ancestry(session, f"chain-{depth}", "final")
        cost[depth] = statements
        stage, reached = root.checkpoint.stage, 1
        while stage.parent_checkpoints or stage.parent_models:
            parent = next(iter(stage.parent_checkpoints.values()), None) or next(
                iter(stage.parent_models.values())
            )
            stage, reached = (
                parent.checkpoint.stage
                if isinstance(parent, AncestryNode)
                else parent.stage,
                reached + 1,
            )
        assert reached == depth, "the tree must reach the first stage"

    assert len(cost[12]) == len(cost[2]) <= 11, cost[12]  # 10, and the check for datasets written by stages
    assert sum("RECURSIVE" in statement.upper() for statement in cost[12]) == 1


def test_an_unknown_version_names_the_versions_there_are(store: LineageStore, builder):
    builder.llava("1")
    builder.llava("2")
    with (
        store.session() as session,
        pytest.raises(LineageError, match=r"no version '7' .*\(versions: 1, 2\)"),
    ):
        ancestry(session, "shapes-llava", "7")


def test_ancestry_goes_through_a_dataset_a_data_stage_wrote(store: LineageStore, builder):
    """retrain read the bootstrapped captions, which capfilt wrote from the noisy ones with pretrain's
    weights: all three stages and both dataset versions are in retrain's model's ancestry."""
    builder.bootstrapped()
    with store.session() as session:
        root = ancestry(session, "shapes-blip", "1")
    retrain = root.checkpoint.stage
    (bootstrapped,) = retrain.datasets
    assert (bootstrapped.name, retrain.parent_checkpoints) == ("captions-capfilt", {})
    (capfilt,) = bootstrapped.produced_by
    assert (capfilt.objective, capfilt.metrics) == ("capfilt", {"noise_removed": 0.8})
    assert [d.name for d in capfilt.datasets] == ["captions"]
    assert capfilt.datasets[0].produced_by == ()  # generated, not written by a stage
    assert capfilt.parent_checkpoints["*"].stage.name == "pretrain"
    assert {d.md5 for d in root.training_datasets()} == {builder.md5_of("captions-noisy"), builder.md5_of("captions-bootstrapped")}
    with store.session() as session:
        tree = ancestry_dict(session, "shapes-blip", "1")
    assert tree["checkpoint"]["stage"]["datasets"][0]["produced_by"][0]["name"] == "capfilt"
    json.dumps(tree)
