"""Users, roles and tokens in a workdir's access file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from registry.access import AccessError, AccessList, Actor, add_user, load_access, local_actor


def test_added_user_signs_in_with_the_token_shown_once(tmp_path: Path):
    path = tmp_path / "access.yaml"
    token = add_user(path, "alice", ["approve", "promote", "approve"])
    assert token not in path.read_text()  # only the hash is kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    access = load_access(path)
    actor = access.authenticate("alice", token)
    assert actor == Actor("alice", frozenset({"promote", "approve"}), authenticated=True)
    assert access.users["alice"].roles == ["promote", "approve"]
    with pytest.raises(AccessError, match="unknown user or wrong token"):
        access.authenticate("alice", token + "x")
    with pytest.raises(AccessError, match="unknown user or wrong token"):
        access.authenticate("mallory", token)


def test_re_adding_a_user_replaces_their_token(tmp_path: Path):
    path = tmp_path / "access.yaml"
    old = add_user(path, "bob", ["promote"])
    new = add_user(path, "bob", ["approve"])
    access = load_access(path)
    assert access.authenticate("bob", new).roles == frozenset({"approve"})
    with pytest.raises(AccessError):
        access.authenticate("bob", old)


def test_without_users_the_command_line_may_promote_but_nobody_approves(tmp_path: Path):
    actor = local_actor(load_access(tmp_path / "absent.yaml"), "dev")
    assert actor is not None and not actor.authenticated
    actor.require("promote", "promote m")
    with pytest.raises(AccessError, match="'dev' may not approve m: that needs the role 'approve'"):
        actor.require("approve", "approve m")
    assert local_actor(AccessList.model_validate({"users": {"a": {"roles": ["promote"], "token_sha256": "0" * 64}}}), "dev") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("users: [alice]", "users: Input should be a valid dictionary"),
        ("users: {alice: {roles: [admin], token_sha256: " + "0" * 64 + "}}", "users.alice.roles.0"),
        ("users: {alice: {roles: [promote], token_sha256: abc}}", "users.alice.token_sha256"),
        ("users: {Alice!: {roles: [promote], token_sha256: " + "0" * 64 + "}}", "users.Alice!"),
        ("users: {alice: {roles: [promote], token_sha256: " + "0" * 64 + ", token: x}}", "users.alice.token"),
        ("users: {alice: [", "not valid YAML"),
    ],
)
def test_a_bad_access_file_names_itself_and_the_field(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "access.yaml"
    path.write_text(text)
    with pytest.raises(AccessError, match="access.yaml") as info:
        load_access(path)
    assert fragment in str(info.value)


def test_bad_user_names_and_roles_are_refused_before_writing(tmp_path: Path):
    path = tmp_path / "access.yaml"
    with pytest.raises(AccessError, match="cannot add user '../x'"):
        add_user(path, "../x", ["promote"])
    with pytest.raises(AccessError, match="roles allowed: promote, approve"):
        add_user(path, "carol", ["root"])  # type: ignore[list-item]
    assert not path.exists()
