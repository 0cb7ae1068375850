"""Paths read from data files resolve inside their folder, or are refused saying why; no torch is needed for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.data.errors import DataError
from components.data.paths import resolve_image, resolve_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("outside")
    return tmp_path / "data"


def test_a_relative_path_resolves_inside_the_root(root: Path):
    assert resolve_inside(root, "images/a.png") == (root / "images" / "a.png").resolve()
    assert resolve_inside(root, "images/./a.png") == (root / "images" / "a.png").resolve()
    assert resolve_image(root, "images/a.png") == (root / "images" / "a.png").resolve()


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("/etc/passwd", "is absolute"),
        ("\\\\server\\share\\x.png", "is absolute"),
        ("C:\\images\\a.png", "is absolute"),
        ("C:a.png", "is absolute"),
        ("../secret.txt", "contains '..'"),
        ("images/../../secret.txt", "contains '..'"),
        ("images\\..\\..\\secret.txt", "contains '..'"),
        ("", "is not a usable path"),
        ("   ", "is not a usable path"),
        ("images/a.png\x00.txt", "is not a usable path"),
    ],
)
def test_paths_that_could_leave_the_root_are_refused(root: Path, relative: str, reason: str):
    with pytest.raises(DataError, match=reason) as error:
        resolve_inside(root, relative, source="instruct_test.json sample 3")
    assert str(error.value).startswith("instruct_test.json sample 3: path ") and str(root) in str(error.value)


def test_an_image_path_is_named_as_one(root: Path):
    with pytest.raises(DataError, match=r"^data.json sample 4: image path '\.\./x.png' contains '\.\.'; image paths must"):
        resolve_image(root, "../x.png", source="data.json sample 4")


def test_a_symlink_leading_out_of_the_root_is_refused_and_one_staying_inside_is_followed(root: Path):
    (root / "images" / "escape.png").symlink_to(root.parent / "secret.txt")
    (root / "images" / "alias.png").symlink_to(root / "images" / "a.png")
    with pytest.raises(DataError, match="outside .* symlink"):
        resolve_inside(root, "images/escape.png")
    assert resolve_inside(root, "images/alias.png") == (root / "images" / "a.png").resolve()


def test_the_module_imports_no_torch():
    """The dashboard resolves dataset paths with it and must not pay for importing torch."""
    code = "import sys, components.data.paths; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_one_resolver_checks_every_file_of_a_folder_it_has_seen(root: Path):
    """The resolver resolves a folder once; a symlinked file in that folder, or a symlinked folder,
    must still be caught."""
    from components.data.paths import InsideResolver

    (root / "images" / "escape.png").symlink_to(root.parent / "secret.txt")
    (root.parent / "elsewhere").mkdir()
    (root.parent / "elsewhere" / "b.png").write_bytes(b"png")
    (root / "linked").symlink_to(root.parent / "elsewhere")
    inside = InsideResolver(root)
    assert inside("images/a.png") == (root / "images" / "a.png").resolve()
    with pytest.raises(DataError, match="outside .* symlink"):
        inside("images/escape.png")
    with pytest.raises(DataError, match="outside .* symlink"):
        inside("linked/b.png")
    assert inside("images/./a.png") == inside("images/a.png")
