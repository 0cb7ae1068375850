"""The S3 server goes away mid-pipeline: every request is retried, then the run fails with a clear error,
and nothing is half-registered: no model version, no alias, the lineage store's run marked failed.

"Goes away" is real: moto's server is stopped, and a socket on its port accepts each connection and
closes it at once, counting them, so the test sees how many times a request was tried.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from registry.lineage import LineageStore
from registry.lineage.schema import ModelVersion, PipelineRun, Recipe

pytestmark = pytest.mark.slow

TINY_LLAVA = Path(__file__).parents[1] / "e2e" / "tiny_llava.yaml"
ATTEMPTS = 3


class ClosingListener:
    """Accepts connections on a port and closes each at once: a store that is there and answers nothing."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.sock.close()


def test_s3_going_away_mid_pipeline_fails_clearly_and_registers_nothing(stack, tmp_path):
    env = {**stack.env, "MMOPS_S3_MAX_ATTEMPTS": str(ATTEMPTS)}
    process = subprocess.Popen([sys.executable, "-m", "mmops", "run", str(TINY_LLAVA), "--workdir", str(tmp_path / "work")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = []
    listener = None
    try:
        for line in process.stdout:
            output.append(line)
            if "stage clip (contrastive)" in line and listener is None:  # the data is pushed; the first stage trains
                stack.s3.stop()
                listener = ClosingListener(stack.s3.port)
        status = process.wait(timeout=600)
    finally:
        if listener is not None:
            listener.close()
        stack.s3.start()  # a fresh, empty store for the tests after this one
        stack.s3_client().create_bucket(Bucket="mmops-team")
    text = "".join(output)
    assert listener is not None, f"the run never reached its first stage:\n{text[-4000:]}"
    assert status == 2, text[-4000:]
    error = [line for line in output if line.startswith("error: ")]
    assert error, text[-4000:]
    assert "s3://mmops-team/artifacts" in error[0] and stack.s3.url in error[0] and f"{ATTEMPTS} attempts" in error[0]
    assert "Traceback" not in text.split(error[0])[-1]
    assert listener.accepted >= ATTEMPTS, f"each request is tried {ATTEMPTS} times; the store saw {listener.accepted} connections"

    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    assert client.search_model_versions("name='tiny-llava'") == []
    store = LineageStore(stack.lineage_url)
    try:
        with store.session() as session:
            runs = session.scalars(select(PipelineRun).join(Recipe).where(Recipe.name == "tiny-llava")).all()
            versions = session.scalars(select(ModelVersion).where(ModelVersion.name == "tiny-llava")).all()
            run_errors = [run.error or "" for run in runs]
    finally:
        store.dispose()
    assert [run.status for run in runs] == ["failed"] and versions == []
    assert "s3://mmops-team/artifacts" in run_errors[0], "the lineage store says why the run failed"


def test_a_store_that_is_gone_at_the_start_fails_clearly_before_any_training(stack, tmp_path):
    stack.s3.stop()
    try:
        result = stack.mmops("run", str(TINY_LLAVA), "--workdir", str(tmp_path / "work"), status=None, timeout=600)
    finally:
        stack.s3.start()
        stack.s3_client().create_bucket(Bucket="mmops-team")
    assert result.returncode == 2, result.stderr[-4000:]
    error = result.stderr[result.stderr.index("error: "):]
    assert error.startswith(f"error: the artifact store s3://mmops-team/artifacts (S3 at {stack.s3.url}) failed after 4 attempts"), error[:2000]
    assert "stage clip" not in result.stdout + result.stderr, "nothing trains when the store is gone"
    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    assert client.search_model_versions("name='tiny-llava'") == []


def test_a_dvc_remote_that_cannot_take_the_data_fails_the_run_before_any_training(stack, tmp_path):
    env = {**stack.env, "MMOPS_DVC_REMOTE": "s3://mmops-no-such-bucket/dvc"}
    result = subprocess.run([sys.executable, "-m", "mmops", "run", str(TINY_LLAVA), "--workdir", str(tmp_path / "work")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 2, result.stderr[-4000:]
    error = result.stderr[result.stderr.index("error: "):]
    assert error.startswith("error: dvc push to s3://mmops-no-such-bucket/dvc failed in ") and "ERROR:" in error and "NoSuchBucket" in error, error[:2000]
    assert "Having any troubles" not in error
    assert "stage clip" not in result.stdout + result.stderr
    client = MlflowClient(tracking_uri=stack.tracking_uri, registry_uri=stack.tracking_uri)
    assert client.search_model_versions("name='tiny-llava'") == []
