"""A workdir that cannot take a run's writes, said before the run and, when it fills up during one, said plainly.

Before a run: the workdir (or the nearest folder above it that exists) must take a probe file, and its file
system must have settings.min_free_mb free, since the Prefect, MLflow and lineage databases, the dataset and the
checkpoints all land there. When a run fails and the workdir's file system is then full or read-only, that is
the error people see, not the traceback of whichever library hit it first (Prefect's server, SQLite, DVC).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from mmops.errors import MmopsError, exception_chain

STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES}
NEARLY_FULL_BYTES = 1 << 20  # under this free, a failure is put down to the full disk


class WorkdirStorageError(MmopsError):
    """The workdir cannot be written, or has too little space for a run."""


def existing_folder(workdir: Path) -> Path:
    """The workdir, or the nearest folder above it that exists (where it would be made)."""
    folder = workdir
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def check_workdir(workdir: Path, min_free_mb: int) -> None:
    """Refuse a run whose workdir cannot be written or has less than min_free_mb free; writes nothing that stays."""
    folder = existing_folder(workdir)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mmops-probe-"):
            pass
    except OSError as exc:
        raise WorkdirStorageError(f"the workdir {workdir} cannot be written ({folder}: {exc.strerror}); "
                                  "choose another with --workdir, or make it writable") from None
    free = shutil.disk_usage(folder).free
    if free < min_free_mb << 20:
        raise WorkdirStorageError(f"the workdir {workdir} has {free / 2**20:.1f} MiB free, under the {min_free_mb} MiB a run needs "
                                  "(its databases, dataset and checkpoints); free some space, choose another --workdir, "
                                  "or lower MMOPS_MIN_FREE_MB") from None


def storage_failure(workdir: Path, error: BaseException) -> WorkdirStorageError | None:
    """The plain account of a run that failed because its workdir filled up or became unwritable; None otherwise."""
    folder = existing_folder(workdir)
    cause = next((e for e in exception_chain(error) if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS), None)
    full = shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    read_only = not os.access(folder, os.W_OK) or _is_read_only(folder)
    if cause is None and not full and not read_only:
        return None
    what = "is full" if full else "is read-only" if read_only else f"could not be written ({cause.strerror})"
    return WorkdirStorageError(
        f"the run stopped because its workdir {workdir} {what} (first failure: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}). "
        "A model is registered only after every stage, the evaluation and the gate, so none was; free space or choose another "
        "--workdir and run the recipe again"
    )


def _is_read_only(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)

