"""Dataset versions with DVC in a git repository of their own.

The workdir's `datasets/` is a git + DVC repository. Each dataset is a DVC
stage (`dvc.yaml`) whose parameters live in `params.yaml`; `dvc repro`
(re)builds it only when its parameters or command changed, the lock file is
committed to git, and the data is pushed to the DVC remote. A dataset
version is the pair (git revision, DVC md5 of the output directory).

A dataset a data stage writes (CapFilt's bootstrapped captions) or one imported
from a source (LLaVA JSON, COCO captions or shards in a folder or on S3) has no
command to rebuild it from parameters: it is written whole into a fresh folder
(a data stage's: the source version's files, hard-linked, with the stage's files
in place of some) and tracked with `dvc add`. Each write is a new version of that
name (a new git revision) when its content changed; an import also records what
its source held (sources/<name>.json), so an unchanged source is not read again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from configobj import ConfigObj, ConfigObjError

from mmops.errors import PipelineError
from mmops.settings import Settings

GIT_IDENTITY = ["-c", "user.name=mmops", "-c", "user.email=mmops@localhost"]
MAX_NAMED_FILES = 5
SOURCES = "sources"
REMOTE_NAME = "storage"  # the repository's default DVC remote
_REMOTE_SECTION = f'remote "{REMOTE_NAME}"'  # its section in DVC's config files
"""The folder of the datasets repository where an imported dataset's source (url, format, fingerprint) is recorded."""


@dataclass(frozen=True)
class DvcRemote:
    """Where dataset versions are pushed: a local folder or s3://BUCKET[/PREFIX], and how to reach the store.

    The endpoint and region are this machine's way to the store, not the dataset's: they go to
    `.dvc/config.local`, which git does not track. Credentials come from boto3's chain, never from here.
    """

    url: str
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DvcRemote:
        return cls(settings.dvc_remote, settings.s3_endpoint_url, settings.s3_region)

    @property
    def local_options(self) -> dict[str, str | None]:
        return {"endpointurl": self.endpoint_url, "region": self.region}


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    path: Path
    md5: str
    git_rev: str
    remote: str


def _run(args: list[str], cwd: Path, what: str) -> str:
    env = dict(os.environ)
    # the stage command is `mmops ...`: make this interpreter's scripts reachable without an activated venv
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [line for line in lines if line.startswith("ERROR")]  # DVC's own account, without its support footer
        raise PipelineError(f"{what} failed in {cwd} ({' '.join(args[:3])} ...):\n" + "\n".join(errors or lines[-15:]))
    return result.stdout


def _dvc(repo: Path, *args: str, what: str | None = None) -> str:
    return _run([sys.executable, "-m", "dvc", *args], repo, what or f"dvc {args[0]}")


def _git(repo: Path, *args: str) -> str:
    return _run(["git", *GIT_IDENTITY, *args], repo, f"git {args[0]}")


def stage_definition(name: str) -> dict[str, Any]:
    """The DVC stage that builds a dataset; the same one the project's own dvc.yaml holds."""
    return {
        "cmd": f"mmops data generate --params params.yaml --name {name} --out data/{name}",
        "params": [name],
        "outs": [f"data/{name}"],
    }


def ensure_repo(repo: Path, remote: DvcRemote) -> None:
    """Create the git + DVC repository once; point its default remote at `remote` every time."""
    repo.mkdir(parents=True, exist_ok=True)
    if not (repo / ".git").exists():
        _git(repo, "init", "-q", "-b", "main")
    if not (repo / ".dvc").exists():
        _dvc(repo, "init", "-q")
        _set_core_options(repo, {"analytics": "false", "autostage": "true"})
    if "://" not in remote.url:
        Path(remote.url).mkdir(parents=True, exist_ok=True)
    if _remote_is(repo, remote):  # as it was: each dvc command costs a process start of about half a second
        return
    present = _local_options(repo)
    for option, value in remote.local_options.items():
        # an endpoint or region an earlier run set here, gone from the settings now; first, since DVC refuses a
        # remote whose options its kind does not have (a region on a local folder)
        if not value and option in present:
            _dvc(repo, "remote", "modify", "--local", "--unset", REMOTE_NAME, option)
    _dvc(repo, "remote", "add", "--force", "--default", REMOTE_NAME, remote.url)
    for option, value in remote.local_options.items():
        if value and present.get(option) != value:
            _dvc(repo, "remote", "modify", "--local", REMOTE_NAME, option, value)
    _git(repo, "add", "-A")
    if _git(repo, "status", "--porcelain").strip():
        _git(repo, "commit", "-q", "-m", "mmops: initialise dataset repository")


def _set_core_options(repo: Path, options: dict[str, str]) -> None:
    """Set options of the [core] section of `.dvc/config` as `dvc config core.NAME VALUE` would, through the same
    ConfigObj DVC writes its config with, without a DVC process for each (about 0.8 s apiece)."""
    config = ConfigObj(str(repo / ".dvc" / "config"), file_error=True)
    config.setdefault("core", {}).update(options)
    config.write()


def _remote_is(repo: Path, remote: DvcRemote) -> bool:
    """Whether the repository's default remote is `remote` already, its local options (endpoint, region) included,
    as DVC's config files say; anything unread or different is set again with DVC's own commands."""
    config = repo / ".dvc" / "config"
    return (
        _config_section(config, "core").get("remote") == REMOTE_NAME and _config_section(config, _REMOTE_SECTION).get("url") == remote.url
        and _local_options(repo) == {key: value for key, value in remote.local_options.items() if value}
        and not _git(repo, "status", "--porcelain").strip()  # nothing left uncommitted by an earlier call
    )


def _local_options(repo: Path) -> dict[str, str]:
    """The default remote's options in `.dvc/config.local` (this machine's endpoint and region)."""
    return _config_section(repo / ".dvc" / "config.local", _REMOTE_SECTION)


def _config_section(path: Path, section: str) -> dict[str, str]:
    """A section of one of DVC's config files; empty when the file or the section is missing or unreadable."""
    if not path.is_file():
        return {}
    try:
        return dict(ConfigObj(str(path), file_error=True).get(section, {}))
    except (OSError, ConfigObjError):
        return {}


def verify_dataset(repo: Path, name: str) -> None:
    """Refuse a dataset whose files were edited after it was versioned: DVC hashes each file against the version's
    record (only files whose size or time changed are read again), and the error names the files."""
    if current_md5(repo, name) is None or not (repo / "data" / name).is_dir():
        return
    status = json.loads(_dvc(repo, "data", "status", "--granular", "--json", what="dvc data status") or "{}")
    prefix = f"data/{name}/"
    modified = sorted(path.removeprefix(prefix) for path in status.get("uncommitted", {}).get("modified", [])
                      if path.startswith(prefix) and path != prefix)
    if modified:
        shown = ", ".join(modified[:MAX_NAMED_FILES]) + (f" and {len(modified) - MAX_NAMED_FILES} more" if len(modified) > MAX_NAMED_FILES else "")
        raise PipelineError(
            f"dataset {name!r} in {repo / 'data' / name}: {len(modified)} file(s) differ from the versioned data by checksum: {shown}. "
            f"Nothing was trained. Restore the version with `dvc checkout data/{name}` in {repo}, or make the change a new version "
            "(a new source or new parameters)"
        )


def version_dataset(repo: Path, remote: DvcRemote, name: str, params: dict[str, Any]) -> DatasetVersion:
    """Build (or reuse) the dataset for these parameters, commit its lock, push its data; return the version.
    Files edited since the last version are refused first (verify_dataset), not silently rebuilt."""
    ensure_repo(repo, remote)
    verify_dataset(repo, name)
    params_path, dvc_path = repo / "params.yaml", repo / "dvc.yaml"
    all_params = yaml.safe_load(params_path.read_text()) if params_path.exists() else {}
    all_params[name] = params
    params_path.write_text(yaml.safe_dump(all_params, sort_keys=True))
    pipeline = _pipeline(repo)
    pipeline["stages"][name] = stage_definition(name)
    dvc_path.write_text(yaml.safe_dump(pipeline, sort_keys=True))

    _dvc(repo, "repro", "-q", name)
    _git(repo, "add", "-A")
    if _git(repo, "status", "--porcelain").strip():
        _git(repo, "commit", "-q", "-m", f"mmops: dataset {name}")
    _dvc(repo, "push", name, what=f"dvc push to {remote.url}")  # not -q: it would hide the reason a push fails
    rev = _git(repo, "rev-parse", "HEAD").strip()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    md5 = next(out["md5"] for out in lock["stages"][name]["outs"] if out["path"] == f"data/{name}")
    return DatasetVersion(name=name, path=repo / "data" / name, md5=md5, git_rev=rev, remote=remote.url)


def version_derived_dataset(
    repo: Path, remote: DvcRemote, name: str, source: DatasetVersion, replaced: Mapping[str, str]
) -> DatasetVersion:
    """Write `name` as the source version's files with `replaced` (relative path -> text) in place of
    some or added, commit it as a DVC-tracked directory, push it; return the version."""
    for relative in replaced:  # before anything is written
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise PipelineError(f"dataset {name!r}: file {relative!r} is not a path inside the dataset")

    def write(incoming: Path) -> None:
        for file in sorted(source.path.rglob("*")):
            relative = file.relative_to(source.path).as_posix()
            if file.is_file() and relative not in replaced:
                target = incoming / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(file, target)
        for relative, text in replaced.items():
            (incoming / relative).parent.mkdir(parents=True, exist_ok=True)
            (incoming / relative).write_text(text)

    return version_written_dataset(repo, remote, name, write, f"from {source.name} {source.md5}")


def version_written_dataset(
    repo: Path, remote: DvcRemote, name: str, write: Callable[[Path], object], message: str, record: str | None = None,
) -> DatasetVersion:
    """`write(folder)` fills a fresh folder that then becomes data/<name>, committed as a DVC-tracked directory
    (with `record`, a text about where it came from, as sources/<name>.json in git) and pushed; the version. A
    write that fails leaves the version before it in place."""
    ensure_repo(repo, remote)
    if name in _pipeline(repo)["stages"]:
        raise PipelineError(f"dataset {name!r} is generated from parameters in {repo / 'dvc.yaml'}; a written dataset must have another name")
    out = repo / "data" / name
    incoming = out.with_name(f".{name}.incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    try:
        write(incoming)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    incoming.rename(out)
    if record is not None:
        (repo / SOURCES).mkdir(exist_ok=True)
        (repo / SOURCES / f"{name}.json").write_text(record)

    _dvc(repo, "add", "-q", f"data/{name}")
    _git(repo, "add", "-A")
    if _git(repo, "status", "--porcelain").strip():
        _git(repo, "commit", "-q", "-m", f"mmops: dataset {name} ({message})")
    return written_version(repo, remote, name)


def written_version(repo: Path, remote: DvcRemote, name: str) -> DatasetVersion:
    """The current version of a written dataset, pushed to the remote (a no-op when it is there already)."""
    _dvc(repo, "push", f"data/{name}.dvc", what=f"dvc push to {remote.url}")
    rev = _git(repo, "rev-parse", "HEAD").strip()
    md5 = yaml.safe_load((repo / "data" / f"{name}.dvc").read_text())["outs"][0]["md5"]
    return DatasetVersion(name=name, path=repo / "data" / name, md5=md5, git_rev=rev, remote=remote.url)


def source_record(repo: Path, name: str) -> str | None:
    """What the last write of a written dataset recorded about its source, if it has a version."""
    path = repo / SOURCES / f"{name}.json"
    return path.read_text() if path.is_file() and (repo / "data" / f"{name}.dvc").is_file() and (repo / "data" / name).is_dir() else None


def current_md5(repo: Path, name: str) -> str | None:
    """The md5 of a dataset's version in the repository now (generated or written), if it has one."""
    written = repo / "data" / f"{name}.dvc"
    if written.is_file():
        return yaml.safe_load(written.read_text())["outs"][0]["md5"]
    lock = repo / "dvc.lock"
    if lock.is_file():
        stage = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get(name)
        if stage:
            return next((out["md5"] for out in stage["outs"] if out["path"] == f"data/{name}"), None)
    return None


def _pipeline(repo: Path) -> dict[str, Any]:
    """The repository's dvc.yaml: the stages that generate datasets from parameters."""
    path = repo / "dvc.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {"stages": {}}


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link, so a derived dataset costs no space for the files it shares; a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
