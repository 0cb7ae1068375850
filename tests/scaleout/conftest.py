"""The shared stack on loopback: PostgreSQL databases for MLflow and the lineage store, moto's S3 server
with a bucket for artifacts and the DVC remote, and a Prefect server; `mmops` runs against them through
MMOPS_ settings alone, as a user's would on a team's stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from sqlalchemy import Engine

from tests.services import S3_CREDENTIALS, LoopbackServer, moto_s3_server, postgres_database, prefect_server

pytestmark = pytest.mark.slow
BUCKET = "mmops-team"


@dataclass
class Stack:
    s3: LoopbackServer
    prefect: LoopbackServer
    tracking_uri: str
    lineage_url: str
    env: dict[str, str]
    """The environment of a user (or a worker) on this stack: MMOPS_ settings and S3 credentials."""

    def s3_client(self):
        return boto3.client("s3", endpoint_url=self.s3.url, region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
                            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3_client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def mmops(self, *args: str, status: int | None = 0, timeout: int = 900) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "mmops", *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if status is not None:
            assert result.returncode == status, f"mmops {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_admin: Engine) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    s3 = moto_s3_server(root / "moto.log").start()
    prefect = prefect_server(root / "prefect-server", root / "prefect-server.log").start(timeout_s=180)
    try:
        with postgres_database(postgres_admin, "mlflow") as tracking_uri, postgres_database(postgres_admin, "lineage") as lineage_url:
            env = {
                **os.environ, **S3_CREDENTIALS,
                "MMOPS_TRACKING_URI": tracking_uri,
                "MMOPS_LINEAGE_URL": lineage_url,
                "MMOPS_ARTIFACT_LOCATION": f"s3://{BUCKET}/artifacts",
                "MMOPS_DVC_REMOTE": f"s3://{BUCKET}/dvc",
                "MMOPS_S3_ENDPOINT_URL": s3.url,
                "MMOPS_PREFECT_API_URL": f"{prefect.url}/api",
                "MMOPS_ACTOR": "stack-tester",
            }
            for name in ("PREFECT_API_URL", "PREFECT_HOME", "MLFLOW_TRACKING_URI"):  # nothing but the settings decides
                env.pop(name, None)
            made = Stack(s3, prefect, tracking_uri, lineage_url, env)
            made.s3_client().create_bucket(Bucket=BUCKET)
            yield made
    finally:
        prefect.stop()
        s3.stop()
