"""Where mmops keeps its state: one typed, validated object, built from the workdir, a settings file and the environment.

Embedded defaults need no set-up: the Prefect ephemeral API, MLflow on SQLite,
the lineage store on SQLite, and artifacts, the DVC remote and the audit log in
the workdir. The same code runs on a shared stack when settings point it there:

  environment variable        settings-file key   allowed
  MMOPS_PREFECT_API_URL       prefect_api_url     http(s)://HOST[:PORT]/api (unset: the ephemeral API)
  MMOPS_TRACKING_URI          tracking_uri        sqlite:///PATH, postgresql://..., http(s)://HOST[:PORT]
  MMOPS_LINEAGE_URL           lineage_url         sqlite:///PATH, postgresql://...
  MMOPS_ARTIFACT_LOCATION     artifact_location   a local folder (path or file:// URI) or s3://BUCKET[/PREFIX]
  MMOPS_DVC_REMOTE            dvc_remote          a local folder or s3://BUCKET[/PREFIX]
  MMOPS_S3_ENDPOINT_URL       s3_endpoint_url     http(s)://HOST[:PORT] of a MinIO-like store (unset: AWS)
  MMOPS_S3_REGION             s3_region           e.g. us-east-1
  MMOPS_S3_MAX_ATTEMPTS       s3_max_attempts     1-20 tries of each S3 request (with backoff) before failing
  MMOPS_ACTOR                 actor               the name recorded for this user's actions
  MMOPS_ACCESS_FILE           access_file         the users who may promote (registry.access)
  MMOPS_MIN_FREE_MB           min_free_mb         0-1048576 MiB the workdir's disk must have free to start a run (256)
  MMOPS_ACCELERATOR           accelerator         cpu, gpu or auto          \
  MMOPS_DEVICES               devices             1-1024 per node            | a machine's or a pool's way to train,
  MMOPS_NUM_NODES             num_nodes           1-4096                     | over every recipe's `distributed:`
  MMOPS_STRATEGY              strategy            auto, ddp, ddp_spawn, fsdp | (unset: the recipe's)
  MMOPS_PRECISION             precision           32-true, bf16-mixed, ...  /

The settings file is MMOPS_SETTINGS_FILE, or else `settings.yaml` in the workdir
when there is one; the environment wins over the file, the file over the defaults.
S3 credentials are never settings: boto3's standard chain finds them
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws, an instance role).
PostgreSQL URLs without a driver get psycopg (version 3), the one mmops installs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict

from mmops.errors import MmopsError
from mmops.redaction import redact

SETTINGS_FILE_ENV = "MMOPS_SETTINGS_FILE"
WORKDIR_SETTINGS_FILE = "settings.yaml"
DEFAULT_S3_MAX_ATTEMPTS = 4
DEFAULT_MIN_FREE_MB = 256
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
POSTGRES_DRIVER = "postgresql+psycopg"


class SettingsError(MmopsError):
    """A setting from the environment or the settings file is not allowed."""


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
    prefect_api_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    min_free_mb: int = DEFAULT_MIN_FREE_MB
    accelerator: str | None = None
    devices: int | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    precision: str | None = None
    sources: dict[str, str] = {}
    """setting -> where its value came from: 'default', 'MMOPS_... (environment)' or the settings file."""

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

    @property
    def uses_s3(self) -> bool:
        return any(value.startswith("s3://") for value in (self.artifact_location, self.dvc_remote))

    def require_registry(self) -> None:
        """Refuse a command that reads or changes registered models where there are none to find: with the embedded
        defaults, a workdir no run has written to (opening its databases would create them)."""
        for variable, url, file in (("MMOPS_TRACKING_URI", self.tracking_uri, "mlflow.db"), ("MMOPS_LINEAGE_URL", self.lineage_url, "lineage.db")):
            path = self.workdir / file
            if url == f"sqlite:///{path}" and not path.is_file():
                raise SettingsError(f"no registry in {self.workdir}: nothing has run there ({path} is missing); "
                                    f"run a recipe there first, or set {variable} to a shared one")

    @property
    def distributed(self) -> dict[str, str | int]:
        """The training settings given (accelerator, devices, num_nodes, strategy, precision): they replace the recipe's."""
        given = {"accelerator": self.accelerator, "devices": self.devices, "num_nodes": self.num_nodes,
                 "strategy": self.strategy, "precision": self.precision}
        return {name: value for name, value in given.items() if value is not None}

    def library_environment(self) -> dict[str, str]:
        """The variables through which Prefect, MLflow and boto3 read these settings (they read no arguments for them)."""
        env = {
            "PREFECT_HOME": str(self.prefect_home),
            "AWS_MAX_ATTEMPTS": str(self.s3_max_attempts),
            "AWS_RETRY_MODE": "standard",  # exponential backoff with jitter, connection errors included
        }
        if self.prefect_api_url:
            env["PREFECT_API_URL"] = self.prefect_api_url
        if self.s3_endpoint_url:
            env["MLFLOW_S3_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_S3"] = self.s3_endpoint_url
        if self.s3_region:
            env["AWS_DEFAULT_REGION"] = self.s3_region
        return env

    def shown(self) -> dict[str, str]:
        """Every setting as it may be shown to people (passwords in URLs replaced by ***)."""
        values = self.model_dump(exclude={"sources"})
        return {name: "" if value is None else redact(str(value)) for name, value in values.items()}

    @classmethod
    def for_workdir(cls, workdir: str | Path, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        workdir = Path(workdir).expanduser().resolve()
        chosen: dict[str, Any] = {}
        sources: dict[str, str] = {}
        file, file_values = _settings_file(workdir, env)
        for name, value in file_values.items():
            chosen[name], sources[name] = value, f"{file} ({name})"
        for name in FIELDS:
            variable = f"MMOPS_{name.upper()}"
            if env.get(variable, "").strip():  # a blank variable counts as unset
                chosen[name], sources[name] = env[variable].strip(), f"{variable} (environment)"
        defaults = {
            "tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
            "lineage_url": f"sqlite:///{workdir / 'lineage.db'}",
            "artifact_location": (workdir / "mlartifacts").as_uri(),
            "dvc_remote": str(workdir / "dvc-remote"),
            "actor": env.get("USER") or "mmops",
            "access_file": str(workdir / "access.yaml"),
        }
        for name, value in defaults.items():
            if name not in chosen:
                chosen[name], sources[name] = value, "default"
        for name in FIELDS:
            sources.setdefault(name, "default")
        values = {name: _check(name, value, sources[name]) for name, value in chosen.items()}
        return cls(workdir=workdir, sources=sources, **values)


DISTRIBUTED_FIELDS = ("accelerator", "devices", "num_nodes", "strategy", "precision")
FIELDS = ("prefect_api_url", "tracking_uri", "lineage_url", "artifact_location", "dvc_remote",
          "s3_endpoint_url", "s3_region", "s3_max_attempts", "actor", "access_file",
          "min_free_mb", *DISTRIBUTED_FIELDS)
"""The settings a file or an MMOPS_ variable may choose; the workdir is the command's own argument."""


def _settings_file(workdir: Path, env: Mapping[str, str]) -> tuple[Path | None, dict[str, Any]]:
    named = env.get(SETTINGS_FILE_ENV)
    path = Path(named).expanduser() if named else workdir / WORKDIR_SETTINGS_FILE
    if not path.is_file():
        if named:
            raise SettingsError(f"{SETTINGS_FILE_ENV}={named}: no such file; allowed: the path of a YAML file of settings")
        return None, {}
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not YAML ({error})") from None
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: a mapping of settings is needed, not {type(values).__name__}; allowed keys: {', '.join(FIELDS)}")
    unknown = sorted(str(key) for key in values if key not in FIELDS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    return path, {key: value for key, value in values.items() if value is not None}


def _check(name: str, value: Any, source: str) -> Any:
    """The value of one setting, normalised, or a SettingsError naming where it came from and what is allowed."""
    checker = CHECKS.get(name)
    try:
        return checker(value) if checker else str(value)
    except ValueError as error:
        raise SettingsError(f"{source}: {redact(str(value))!r} is not allowed for {name}: {error}") from None


def _database_url(value: Any, http: bool) -> str:
    text = str(value)
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme == "sqlite" and text.startswith("sqlite:///") and len(text) > len("sqlite:///"):
        return text
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        parts = urlsplit(text)
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("a PostgreSQL URL names a host and a database: postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        return POSTGRES_DRIVER + text[len(scheme):] if scheme in ("postgresql", "postgres") else text
    if http and scheme in ("http", "https") and urlsplit(text).hostname:
        return text.rstrip("/")
    allowed = "sqlite:///PATH, postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE" + (", http(s)://HOST[:PORT] (an MLflow server)" if http else "")
    raise ValueError(f"allowed: {allowed}")


def _store_location(value: Any) -> str:
    """A folder, as given (absolute or relative to where mmops runs), or s3://BUCKET[/PREFIX]."""
    text = str(value)
    if text.startswith("s3://"):
        return _s3_url(text)
    if "://" in text and not text.startswith("file://"):
        raise ValueError("allowed: a local folder (a path or a file:// URI) or s3://BUCKET[/PREFIX]")
    return text


def _artifact_location(value: Any) -> str:
    text = _store_location(value)
    if text.startswith(("s3://", "file://")):
        return text
    return Path(text).expanduser().resolve().as_uri()


def _dvc_remote(value: Any) -> str:
    text = _store_location(value)
    if text.startswith("s3://"):
        return text
    return str(Path(text.removeprefix("file://")).expanduser().resolve())


def _s3_url(text: str) -> str:
    bucket = text[len("s3://"):].split("/", 1)[0]
    if not BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"bucket {bucket!r}: 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit")
    return text.rstrip("/")


def _http_url(value: Any) -> str:
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("allowed: http(s)://HOST[:PORT][/PATH]")
    return text.rstrip("/")


def _attempts(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= 20 or isinstance(value, float | bool):
        raise ValueError("allowed: a whole number from 1 to 20")
    return number


def _choice(*allowed: str):
    def check(value: Any) -> str:
        if str(value).strip() not in allowed:
            raise ValueError(f"allowed: {', '.join(allowed)}")
        return str(value).strip()

    return check


def _count(most: int, least: int = 1):
    def check(value: Any) -> int:
        text = str(value).strip()
        if isinstance(value, float | bool) or not text.isdigit() or not least <= int(text) <= most:
            raise ValueError(f"allowed: a whole number from {least} to {most}")
        return int(text)

    return check


def _name(value: Any) -> str:
    text = str(value).strip()
    if not text or len(text) > 100:
        raise ValueError("allowed: a name of 1 to 100 characters")
    return text


CHECKS = {
    "tracking_uri": lambda v: _database_url(v, http=True),
    "lineage_url": lambda v: _database_url(v, http=False),
    "artifact_location": _artifact_location,
    "dvc_remote": _dvc_remote,
    "prefect_api_url": _http_url,
    "s3_endpoint_url": _http_url,
    "s3_region": _name,
    "s3_max_attempts": _attempts,
    "min_free_mb": _count(1 << 20, least=0),
    "actor": _name,
    "access_file": lambda v: str(Path(str(v)).expanduser()),
    "accelerator": _choice("cpu", "gpu", "auto"),
    "devices": _count(1024),
    "num_nodes": _count(4096),
    "strategy": _choice("auto", "ddp", "ddp_spawn", "fsdp"),
    "precision": _choice("32-true", "bf16-mixed", "16-mixed", "bf16-true"),
}


def export_library_environment(settings: Settings, environ: os._Environ | dict[str, str] = os.environ) -> None:
    """Point Prefect, MLflow and boto3 at the settings, once, where a process starts (the CLI, a flow run).

    A PREFECT_HOME the caller set already is kept (a Prefect worker's, a test's).
    """
    for name, value in settings.library_environment().items():
        if name == "PREFECT_HOME":
            environ.setdefault(name, value)
        else:
            environ[name] = value
