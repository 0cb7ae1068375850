"""Resolving a path read from a data file inside the folder it belongs to, and nowhere else.

Image paths in LLaVA JSON files are relative to the dataset folder. A path
that is absolute, has a '..' part, or goes through a symlink that leads out
of the folder is refused: the dashboard shows files of the dataset, never
whatever a data file names. (components/data/llava_json.resolve_image applies
the same rule for training; it lives in a module that imports torch, which
the dashboard does not load.)
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

from dashboards.errors import DashboardError


def resolve_inside(root: Path, relative: str, source: str = "") -> Path:
    """`root / relative`, resolved, refusing any path that is not inside `root`; `source` is named in the error."""
    where = f"{source}: " if source else ""
    rule = f"paths must be relative to {root} and stay inside it"
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        raise DashboardError(f"{where}path {relative!r} is not a usable path; {rule}")
    windows = PureWindowsPath(relative)
    if Path(relative).is_absolute() or windows.is_absolute() or windows.drive or relative.startswith(("/", "\\")):
        raise DashboardError(f"{where}path {relative!r} is absolute; {rule}")
    if ".." in Path(relative).parts or ".." in windows.parts:
        raise DashboardError(f"{where}path {relative!r} contains '..'; {rule}")
    real_root = Path(root).resolve()
    resolved = (real_root / relative).resolve()
    if not resolved.is_relative_to(real_root):
        raise DashboardError(f"{where}path {relative!r} resolves to {resolved}, outside {real_root} (through a symlink); {rule}")
    return resolved
