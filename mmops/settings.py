"""Where mmops keeps its state: one typed object, built from the workdir and the environment.

Embedded defaults need no set-up: MLflow on SQLite, the lineage store on
SQLite, artifacts, the DVC remote and the audit log all live in the workdir. Environment variables
prefixed MMOPS_ point the same code at shared services.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    workdir: Path
    tracking_uri: str
    lineage_url: str
    artifact_location: str
    dvc_remote: str
    actor: str
    access_file: Path
    """Users who may promote or approve, with their tokens' hashes (registry.access)."""

    @property
    def datasets_repo(self) -> Path:
        """The git + DVC repository that versions the datasets of this workdir."""
        return self.workdir / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.jsonl"

    @property
    def prefect_home(self) -> Path:
        return self.workdir / "prefect"

    @classmethod
    def for_workdir(cls, workdir: str | Path, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        workdir = Path(workdir).expanduser().resolve()
        return cls(
            workdir=workdir,
            tracking_uri=env.get("MMOPS_TRACKING_URI") or f"sqlite:///{workdir / 'mlflow.db'}",
            lineage_url=env.get("MMOPS_LINEAGE_URL") or f"sqlite:///{workdir / 'lineage.db'}",
            artifact_location=env.get("MMOPS_ARTIFACT_LOCATION") or (workdir / "mlartifacts").as_uri(),
            dvc_remote=env.get("MMOPS_DVC_REMOTE") or str(workdir / "dvc-remote"),
            actor=env.get("MMOPS_ACTOR") or env.get("USER") or "mmops",
            access_file=Path(env.get("MMOPS_ACCESS_FILE") or workdir / "access.yaml"),
        )
