"""Lineage store fixtures: a migrated store on SQLite and on PostgreSQL, and builders of realistic lineage graphs.

Every PostgreSQL test gets a database of its own, created from the `test`
database and dropped afterwards, so tests can run in parallel and leave
nothing behind. Set MMOPS_TEST_POSTGRES_URL to use another server; when none
is reachable, or psycopg is not installed, the PostgreSQL cases are skipped,
saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from registry.lineage import (
    Checkpoint,
    DatasetVersion,
    LineageStore,
    ModelVersion,
    PipelineRun,
    code_version,
    dataset_version,
    finish_pipeline_run,
    recipe,
    record_checkpoint,
    record_dataset_producer,
    record_evaluation,
    record_model_version,
    record_stage_run,
    sqlite_url,
    start_pipeline_run,
)
from tests.services import postgres_database

LLAVA_RECIPE = """name: tiny-llava
family: llava
stages:
  - {name: clip, objective: contrastive, lr: 0.001}
  - {name: lm, objective: language_modeling, lr: 0.001}
  - {name: align, objective: caption, lr: 0.0005}
  - {name: instruct, objective: instruct, lr: 0.0002}
"""
CLIP_RECIPE = """name: tiny-clip
family: clip
stages:
  - {name: contrastive, objective: contrastive, lr: 0.001}
"""


def md5_of(text: str) -> str:
    """A DVC-style directory md5 for a made-up dataset."""
    return hashlib.md5(text.encode()).hexdigest() + ".dir"


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(params=["sqlite", "postgresql"])
def lineage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, not yet migrated."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "lineage" / "lineage.db")
        return
    with postgres_database(request.getfixturevalue("postgres_admin"), "lineage") as url:
        yield url


@pytest.fixture
def store(lineage_url: str) -> Iterator[LineageStore]:
    store = LineageStore(lineage_url)
    store.upgrade()
    yield store
    store.dispose()


@dataclass
class LineageBuilder:
    """Records whole pipeline runs the way the pipeline flow does, one transaction each."""

    store: LineageStore
    llava_recipe = LLAVA_RECIPE
    md5_of = staticmethod(md5_of)

    def llava(
        self,
        version: str = "1",
        recipe_text: str = LLAVA_RECIPE,
        instruct_data: str = "instruct-v1",
        instruct_name: str = "instruct",
        vqa_exact_match: float = 0.62,
        vision_from: ModelVersion | None = None,
    ) -> ModelVersion:
        """shapes-llava: clip and lm stages -> align (both checkpoints) -> instruct -> model version.

        With vision_from, align takes its vision tower from that registered
        CLIP version instead of from a clip stage of its own.
        """
        with self.store.session() as session:
            run = self._run(session, f"llava-{version}", recipe_text, "llava")
            captions, corpus, instruct = (
                self._dataset(session, "captions", "captions-v1"),
                self._dataset(session, "corpus", "corpus-v1"),
                self._dataset(session, instruct_name, instruct_data),
            )
            parents_ckpt: dict[str, Checkpoint] = {}
            parents_model: dict[str, ModelVersion] = {}
            if vision_from is None:
                parents_ckpt["vision"] = self._stage(
                    session, run, "clip", "contrastive", 0, [captions]
                )
            else:
                parents_model["vision"] = vision_from
            parents_ckpt["language_model"] = self._stage(
                session, run, "lm", "language_modeling", 1, [corpus]
            )
            align = self._stage(
                session,
                run,
                "align",
                "caption",
                2,
                [captions],
                parents_ckpt,
                parents_model,
            )
            final = self._stage(
                session, run, "instruct", "instruct", 3, [instruct], {"*": align}
            )
            metrics = {
                "vqa_exact_match": vqa_exact_match,
                "grounding_iou": 0.4,
                "per_type": {"count": 0.5},
            }
            evaluation = record_evaluation(
                session, run, final, instruct, "test", metrics
            )
            model = record_model_version(
                session,
                "shapes-llava",
                version,
                final,
                run,
                evaluation,
                run.mlflow_run_id,
            )
            finish_pipeline_run(session, run, "finished")
            return model

    def clip(self, version: str = "1") -> ModelVersion:
        with self.store.session() as session:
            run = self._run(session, f"clip-{version}", CLIP_RECIPE, "clip")
            captions = self._dataset(session, "captions", "captions-v1")
            final = self._stage(
                session, run, "contrastive", "contrastive", 0, [captions]
            )
            evaluation = record_evaluation(
                session, run, final, captions, "val", {"retrieval_r1": 0.7}
            )
            model = record_model_version(
                session,
                "shapes-clip",
                version,
                final,
                run,
                evaluation,
                run.mlflow_run_id,
            )
            finish_pipeline_run(session, run, "finished")
            return model

    def chain(self, depth: int) -> ModelVersion:
        """A pipeline of `depth` stages, each starting from the one before: through its checkpoint on odd
        steps, through a model version registered from it on even ones."""
        with self.store.session() as session:
            run = self._run(
                session, f"chain-{depth}", f"name: chain\ndepth: {depth}\n", "llava"
            )
            captions = self._dataset(session, "captions", "captions-v1")
            checkpoint = self._stage(
                session, run, "step-0", "contrastive", 0, [captions]
            )
            for step in range(1, depth):
                if step % 2:
                    parents_ckpt, parents_model = {"*": checkpoint}, {}
                else:
                    model = record_model_version(
                        session, f"chain-{depth}", f"step-{step}", checkpoint, run
                    )
                    parents_ckpt, parents_model = {}, {"*": model}
                checkpoint = self._stage(
                    session,
                    run,
                    f"step-{step}",
                    "caption",
                    step,
                    [captions],
                    parents_ckpt,
                    parents_model,
                )
            return record_model_version(
                session, f"chain-{depth}", "final", checkpoint, run
            )

    def bootstrapped(self, version: str = "1") -> ModelVersion:
        """shapes-blip with CapFilt: pretrain on the noisy captions -> capfilt (a data stage that reads
        them with pretrain's weights and writes a bootstrapped version) -> retrain on that version."""
        with self.store.session() as session:
            run = self._run(session, f"blip-{version}", "name: shapes-blip\ncapfilt: true\n", "blip")
            noisy = self._dataset(session, "captions", "captions-noisy")
            pretrain = self._stage(session, run, "pretrain", "blip_pretrain", 0, [noisy])
            capfilt = record_stage_run(
                session, run, "capfilt", "capfilt", 1, f"mlflow-{run.mlflow_run_id}-capfilt", [noisy],
                {"*": pretrain}, {}, seconds=3.0, final_loss=None, metrics={"noise_removed": 0.8},
            )
            bootstrapped = self._dataset(session, "captions-capfilt", "captions-bootstrapped")
            record_dataset_producer(session, bootstrapped, capfilt)
            final = self._stage(session, run, "retrain", "blip_pretrain", 2, [bootstrapped])
            model = record_model_version(session, "shapes-blip", version, final, run, None, run.mlflow_run_id)
            finish_pipeline_run(session, run, "finished")
            return model

    def _run(
        self, session: Session, key: str, recipe_text: str, family: str
    ) -> PipelineRun:
        name = recipe_text.splitlines()[0].removeprefix("name: ")
        node = recipe(session, sha256_of(recipe_text), name, family, recipe_text)
        code = code_version(session, "0123456789abcdef0123456789abcdef01234567")
        return start_pipeline_run(
            session, f"mlflow-{key}", node, code, f"/work/{key}", f"prefect-{key}"
        )

    def _dataset(self, session: Session, name: str, content: str) -> DatasetVersion:
        return dataset_version(
            session,
            name,
            md5_of(content),
            "fedcba9876543210fedcba9876543210fedcba98",
            f"data/{name}",
        )

    def _stage(
        self,
        session: Session,
        run: PipelineRun,
        name: str,
        objective: str,
        position: int,
        datasets: list[DatasetVersion],
        parent_checkpoints: dict[str, Checkpoint] | None = None,
        parent_models: dict[str, ModelVersion] | None = None,
    ) -> Checkpoint:
        """Record a finished stage; return its checkpoint."""
        stage = record_stage_run(
            session,
            run,
            name,
            objective,
            position,
            f"mlflow-{run.mlflow_run_id}-{name}",
            datasets,
            parent_checkpoints or {},
            parent_models or {},
            seconds=1.5 + position,
            final_loss=2.0 / (position + 1),
            metrics={"steps": 10 * (position + 1)},
        )
        return record_checkpoint(
            session,
            stage,
            f"{run.workdir}/{name}.safetensors",
            sha256_of(f"{run.id}/{name}"),
        )


@pytest.fixture
def builder(store: LineageStore) -> LineageBuilder:
    return LineageBuilder(store)
