"""Real services on loopback for the tests: a process serving HTTP (moto's S3 server, a Prefect server) and
PostgreSQL databases of their own on the server at 127.0.0.1:5432.

Nothing here is a mock: each helper starts the real program, waits until it answers, and stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import NoSuchModuleError, OperationalError

from mmops.redaction import redact

POSTGRES_ADMIN_URL = os.environ.get("MMOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1"}
"""moto accepts any keys; these stand in for the standard chain's environment variables."""


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LoopbackServer:
    """A server process on 127.0.0.1 with its output in a log file."""

    name: str
    command: Sequence[str]
    port: int
    health_path: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120) -> LoopbackServer:
        with self.log.open("a") as output:
            self.process = subprocess.Popen(list(self.command), stdout=output, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=5):
                    return self
            except OSError:
                pass
            assert self.process.poll() is None, f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{self.name} did not answer in {timeout_s} s:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def moto_s3_server(log: Path, port: int | None = None) -> LoopbackServer:
    """moto in server mode: the S3 API on loopback, its buckets in memory (gone when it stops)."""
    port = port or free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    return LoopbackServer("moto S3 server", command, port, "/moto-api/", log, dict(os.environ))


def prefect_server(home: Path, log: Path) -> LoopbackServer:
    """A Prefect API server with its own SQLite database under `home`."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    command = [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    return LoopbackServer("Prefect server", command, port, "/api/health", log, env)


def postgres_admin_or_skip() -> Engine:
    """An AUTOCOMMIT engine on the admin database; the test is skipped, saying why, when there is none."""
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    except (ModuleNotFoundError, NoSuchModuleError) as error:
        pytest.skip(f"no PostgreSQL driver for {redact(POSTGRES_ADMIN_URL)}: {error}")
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        engine.dispose()
        if under_ci():
            pytest.fail(f"CI=true: PostgreSQL at {redact(POSTGRES_ADMIN_URL)} must answer: {error.orig}")
        pytest.skip(f"no PostgreSQL at {redact(POSTGRES_ADMIN_URL)}: {error.orig}")
    return engine


@contextmanager
def postgres_database(admin: Engine, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards (so tests can run side by side)."""
    database = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
    try:
        yield admin.url.set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
