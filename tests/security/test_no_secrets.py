"""No secret of a run's settings (the database password, the S3 secret key) appears anywhere a person or a tool
reads afterwards: MLflow's params, tags, metrics and artifacts, the lineage store, the logs, the workdir, the
S3 bucket, `mmops config` or a page of the dashboard."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sqlalchemy import create_engine, inspect, make_url, select, table, column

from tests.dashboards.app_testing import DEFAULT_PAGE, open_app
from tests.services import S3_CREDENTIALS, moto_s3_server, postgres_database

pytestmark = pytest.mark.slow

TINY_CLIP = Path(__file__).parents[1] / "e2e" / "tiny_clip.yaml"
BUCKET = "mmops-secrets"
PASSWORD = f"pw-{secrets.token_hex(8)}"
S3_SECRET = f"s3-{secrets.token_hex(12)}"
SECRETS = (PASSWORD.encode(), S3_SECRET.encode())
PAGES = (DEFAULT_PAGE, "views/lineage.py", "views/runs.py", "views/data.py", "views/promote.py")


def with_password(url: str) -> str:
    """The database's URL with a password in it: the machine's PostgreSQL trusts loopback, so it is sent and ignored."""
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def leaks(where: str, data: bytes) -> list[str]:
    return [f"{where} holds {secret.decode()}" for secret in SECRETS if secret in data]


def database_rows(url: str) -> Iterator[tuple[str, bytes]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for name in inspect(engine).get_table_names():
                columns = [c["name"] for c in inspect(engine).get_columns(name)]
                for row in connection.execute(select(*[column(c) for c in columns]).select_from(table(name))):
                    yield name, repr(tuple(row)).encode()
    finally:
        engine.dispose()


def element_bytes(node) -> bytes:
    """Everything a rendered page holds: every element's message, tables included."""
    proto = getattr(node, "proto", None)
    own = proto.SerializeToString() if proto is not None else b""
    return own + b"".join(element_bytes(child) for child in getattr(node, "children", {}).values())


@pytest.fixture(scope="module")
def stack_with_secrets(tmp_path_factory, postgres_admin):
    root = tmp_path_factory.mktemp("secrets")
    s3 = moto_s3_server(root / "moto.log").start()
    try:
        with postgres_database(postgres_admin, "mlflow") as tracking, postgres_database(postgres_admin, "lineage") as lineage:
            env = {
                **os.environ, **S3_CREDENTIALS, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                "MMOPS_TRACKING_URI": with_password(tracking), "MMOPS_LINEAGE_URL": with_password(lineage),
                "MMOPS_ARTIFACT_LOCATION": f"s3://{BUCKET}/artifacts", "MMOPS_DVC_REMOTE": f"s3://{BUCKET}/dvc",
                "MMOPS_S3_ENDPOINT_URL": s3.url, "MMOPS_ACTOR": "secrets-tester",
            }
            for name in ("PREFECT_API_URL", "PREFECT_HOME", "MLFLOW_TRACKING_URI"):
                env.pop(name, None)
            boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1", aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=S3_SECRET).create_bucket(Bucket=BUCKET)
            workdir = root / "work"
            outputs = []
            for args in (["run", str(TINY_CLIP)], ["config"], ["models"], ["lineage", "tiny-clip@production"]):
                done = subprocess.run([sys.executable, "-m", "mmops", *args, "--workdir", str(workdir)], capture_output=True, env=env, timeout=900)
                assert done.returncode == 0, done.stderr[-4000:].decode(errors="replace")
                outputs.append((f"mmops {args[0]}", done.stdout + done.stderr))
            yield env, workdir, s3, outputs, (tracking, lineage)
    finally:
        s3.stop()


def test_no_secret_in_outputs_workdir_bucket_or_databases(stack_with_secrets):
    env, workdir, s3, outputs, databases = stack_with_secrets
    found = [leak for where, text in outputs for leak in leaks(where, text)]
    files = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.name == "config" and path.parent.name == ".dvc" for path in files)  # the S3 remote is configured...
    found += [leak for path in files for leak in leaks(str(path), path.read_bytes())]  # ...with no key in it
    bucket = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1", aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_SECRET)
    keys = [item["Key"] for page in bucket.get_paginator("list_objects_v2").paginate(Bucket=BUCKET) for item in page.get("Contents", [])]
    assert any(key.endswith("recipe.yaml") for key in keys) and any(key.startswith("dvc/") for key in keys)
    found += [leak for key in keys for leak in leaks(f"s3://{BUCKET}/{key}", bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read())]
    rows = 0
    for url in databases:  # MLflow's params, tags, metrics and registry; the lineage store
        for name, row in database_rows(url):
            rows += 1
            found += leaks(f"table {name} of {make_url(url).database}", row)
    assert rows > 50 and not found, found


def test_no_secret_on_any_dashboard_page(stack_with_secrets, monkeypatch):
    env, workdir, *_ = stack_with_secrets
    for name in ("AWS_SECRET_ACCESS_KEY", "MMOPS_TRACKING_URI", "MMOPS_LINEAGE_URL", "MMOPS_ARTIFACT_LOCATION", "MMOPS_S3_ENDPOINT_URL"):
        monkeypatch.setenv(name, env[name])
    app = open_app(monkeypatch, workdir, PAGES[0])
    shown = element_bytes(app._tree)
    for page in PAGES[1:]:
        app.switch_page(page).run()
        assert not app.exception, [e.value for e in app.exception]
        shown += element_bytes(app._tree)
    assert b"tiny-clip" in shown and not leaks("the dashboard", shown)
