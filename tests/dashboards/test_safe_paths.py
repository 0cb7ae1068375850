"""Paths read from data files resolve inside their folder, or are refused saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.errors import DashboardError
from dashboards.safe_paths import resolve_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("outside")
    return tmp_path / "data"


def test_a_relative_path_resolves_inside_the_root(root: Path):
    assert resolve_inside(root, "images/a.png") == (root / "images" / "a.png").resolve()
    assert resolve_inside(root, "images/./a.png") == (root / "images" / "a.png").resolve()


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("/etc/passwd", "is absolute"),
        ("\\\\server\\share\\x.png", "is absolute"),
        ("C:\\images\\a.png", "is absolute"),
        ("../secret.txt", "contains '..'"),
        ("images/../../secret.txt", "contains '..'"),
        ("images\\..\\..\\secret.txt", "contains '..'"),
        ("", "is not a usable path"),
        ("images/a.png\x00.txt", "is not a usable path"),
    ],
)
def test_paths_that_could_leave_the_root_are_refused(root: Path, relative: str, reason: str):
    with pytest.raises(DashboardError, match=reason) as error:
        resolve_inside(root, relative, source="instruct_test.json sample 3")
    assert str(error.value).startswith("instruct_test.json sample 3: ") and str(root) in str(error.value)


def test_a_symlink_leading_out_of_the_root_is_refused_and_one_staying_inside_is_followed(root: Path):
    (root / "images" / "escape.png").symlink_to(root.parent / "secret.txt")
    (root / "images" / "alias.png").symlink_to(root / "images" / "a.png")
    with pytest.raises(DashboardError, match="outside .* symlink"):
        resolve_inside(root, "images/escape.png")
    assert resolve_inside(root, "images/alias.png") == (root / "images" / "a.png").resolve()
