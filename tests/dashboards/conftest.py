"""A real workdir for the dashboard tests: the tiny LLaVA recipe run twice through the real CLI.

The second run uses a changed recipe (another data seed, one more instruct
step), so the workdir holds two model versions whose recipe and data differ,
two dataset versions, and the second dataset on disk. Tests that change
production work on a copy of it (promotion_workdir), with users who may
promote and approve.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from promotion_users import USERS

from mmops.settings import Settings
from registry.access import Actor, add_user
from registry.lineage import open_store, production_stack
from registry.model_versions import PRODUCTION, alias_version
from registry.promotion import PromotionWorkflow
from registry.tracking import client_for

TINY = Path(__file__).parents[1] / "e2e" / "tiny_llava.yaml"
MODEL = "tiny-llava"
DATA_SEED, CHANGED_DATA_SEED = "seed: 1,", "seed: 2,"
INSTRUCT_STEPS, CHANGED_INSTRUCT_STEPS = "trainable: [connector, language_model], steps: 3", "trainable: [connector, language_model], steps: 4"


@dataclass(frozen=True)
class PipelineWorkdir:
    path: Path
    model: str
    production: str  # the version MLflow's production alias points at
    dataset_md5s: tuple[str, str]  # of the first run's and the second run's data


@dataclass(frozen=True)
class PromotionWorkdir:
    path: Path
    model: str
    production: str  # the version MLflow's production alias points at
    earlier: str  # the production version before it, where a rollback returns
    tokens: dict[str, str]  # user -> token, for promotion_users.USERS


def run_mmops(*args: str, prefect_api: str | None = None) -> subprocess.CompletedProcess:
    """`prefect_api`: the Prefect server a run tracks its flow on (unset: the ephemeral one)."""
    env = {**os.environ, "MMOPS_ACTOR": "dashboard-tester", **({"MMOPS_PREFECT_API_URL": prefect_api} if prefect_api else {})}
    result = subprocess.run([sys.executable, "-m", "mmops", *args], check=False, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"mmops {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def changed_recipe(folder: Path) -> Path:
    """tiny_llava.yaml with another data seed and one more instruct step."""
    text = TINY.read_text()
    assert text.count(DATA_SEED) == 1 and text.count(INSTRUCT_STEPS) == 1, f"{TINY} changed: update the replacements above"
    path = folder / "tiny_llava_changed.yaml"
    path.write_text(text.replace(DATA_SEED, CHANGED_DATA_SEED).replace(INSTRUCT_STEPS, CHANGED_INSTRUCT_STEPS))
    return path


@pytest.fixture(scope="session")
def pipeline_workdir(tmp_path_factory: pytest.TempPathFactory, loopback_prefect_api: str) -> PipelineWorkdir:
    root = tmp_path_factory.mktemp("dashboard")
    work = root / "work"
    run_mmops("run", str(TINY), "--workdir", str(work), prefect_api=loopback_prefect_api)  # see runs_on_loopback_prefect
    run_mmops("run", str(changed_recipe(root)), "--workdir", str(work), prefect_api=loopback_prefect_api)
    client = client_for(Settings.for_workdir(work))
    production = alias_version(client, MODEL, PRODUCTION)
    assert production is not None, "the tiny recipe's gate (threshold 0) promotes its first version"
    md5s = tuple(client.get_model_version(MODEL, v).tags["mmops.dataset.md5"] for v in ("1", "2"))
    assert md5s[0] != md5s[1], "the changed data seed makes a second dataset version"
    return PipelineWorkdir(work, MODEL, production, md5s)


@pytest.fixture
def promotion_workdir(pipeline_workdir: PipelineWorkdir, tmp_path: Path) -> PromotionWorkdir:
    """A copy of the pipeline's workdir for a test to change (the session's stays as the pipeline left it), with USERS
    in its access file and two versions on its production stack, so that a rollback has somewhere to go.

    Paths the stores hold (artifact locations, checkpoints, dataset folders) still name the original, which
    promotions never touch; the stores, the audit log and the access file are the copy's own.
    """
    work = tmp_path / "work"
    shutil.copytree(pipeline_workdir.path, work, symlinks=True)
    settings = Settings.for_workdir(work)
    tokens = {user: add_user(settings.access_file, user, roles) for user, roles in USERS.items()}
    client = client_for(settings)
    with open_store(settings.lineage_url) as store:
        with store.session() as session:
            stack = production_stack(session, MODEL)
        if stack == ["1"]:  # the second run's version did not pass the gate: promote it by hand
            workflow = PromotionWorkflow(store, client, settings.audit_log)
            workflow.promote(Actor("test-setup", frozenset({"promote"})), MODEL, "2", "a second production version to roll back from")
            with store.session() as session:
                stack = production_stack(session, MODEL)
    assert stack == ["1", "2"] and alias_version(client, MODEL, PRODUCTION) == "2", stack
    return PromotionWorkdir(work, MODEL, stack[-1], stack[-2], tokens)
