"""Resolving a path read from a data file inside the folder it belongs to, and nowhere else.

Image paths in LLaVA JSON files are relative to an image root. A path that is
empty, absolute (POSIX or Windows: drive letters, UNC shares), has a '..'
part, or goes through a symlink that leads out of the root is refused: training
reads, and the dashboard shows, files of the dataset, never whatever a data
file names. No torch here: the dashboard imports this module.
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

from components.data.errors import DataError


class InsideResolver:
    """Resolves many paths inside one root, refusing any that is not inside it (see resolve_inside).

    The root and each parent folder are resolved once: a dataset names tens of thousands of files in
    a few folders, and resolving every path from the root took longer than a training stage's setup
    should (11 s for the 60,000 images of LLaVA's stage 2). A file that is itself a symlink is still
    resolved and checked on its own."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.real_root = self.root.resolve()
        self._folders: dict[str, Path] = {}

    def __call__(self, relative: str, source: str = "", what: str = "path") -> Path:
        where = f"{source}: " if source else ""
        rule = f"{what}s must be relative to {self.root} and stay inside it"
        check_relative(relative, source, what, str(self.root))
        path = Path(relative)
        folder = str(path.parent)
        if folder not in self._folders:
            self._folders[folder] = (self.real_root / folder).resolve()
        candidate = self._folders[folder] / path.name
        resolved = candidate.resolve() if candidate.is_symlink() else candidate
        if not resolved.is_relative_to(self.real_root):
            raise DataError(
                f"{where}{what} {relative!r} resolves to {resolved}, outside {self.real_root} (through a symlink); {rule}"
            )
        return resolved


def check_relative(relative: str, source: str = "", what: str = "path", root: str = "its root") -> str:
    """`relative` if it is a usable path below a root wherever that root is (a folder, or a prefix in an
    object store): not empty, not absolute (POSIX or Windows), no '..' part. Symlinks are the resolver's to check."""
    where = f"{source}: " if source else ""
    rule = f"{what}s must be relative to {root} and stay inside it"
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        raise DataError(f"{where}{what} {relative!r} is not a usable path; {rule}")
    windows = PureWindowsPath(relative)
    if Path(relative).is_absolute() or windows.is_absolute() or windows.drive or relative.startswith(("/", "\\")):
        raise DataError(f"{where}{what} {relative!r} is absolute; {rule}")
    if ".." in Path(relative).parts or ".." in windows.parts:
        raise DataError(f"{where}{what} {relative!r} contains '..'; {rule}")
    return relative


def resolve_inside(root: Path, relative: str, source: str = "", what: str = "path") -> Path:
    """`root / relative`, resolved, refusing any path that is not inside `root`: empty, absolute,
    with a '..' part, or through a symlink that leads out. For many paths under one root, build one
    InsideResolver instead.

    `source` (e.g. 'data.json sample 3') and `what` (e.g. 'image path') are named in the error message.
    """
    return InsideResolver(root)(relative, source, what)


def resolve_image(root: Path, rel: str, source: str = "") -> Path:
    """An image path of a data file resolved inside the image root `root` (see resolve_inside)."""
    return resolve_inside(root, rel, source, what="image path")
