"""Who may change production: users, their roles, and their tokens' SHA-256 hashes, in one YAML file.

    users:
      alice: {roles: [promote, approve], token_sha256: 9f86d0...}

`promote` lets a user promote, roll back and request promotions; `approve`
lets a user approve another user's request. Tokens are shown once, when the
user is added, and kept only as hashes; they are compared in constant time.
A workdir without users is single-user: the person at the command line may
promote and roll back, nobody can approve, and the dashboard is read-only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mmops.errors import MmopsError

Role = Literal["promote", "approve"]
ROLES: tuple[Role, ...] = ("promote", "approve")
UserName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class AccessError(MmopsError):
    """The access file is invalid, or a user may not do what was asked."""


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: Annotated[list[Role], Field(min_length=1)]
    token_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AccessList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: dict[UserName, UserEntry] = {}

    def authenticate(self, user: str, token: str) -> Actor:
        """The user with their roles, if `token` is theirs; one error for unknown users and wrong tokens alike."""
        entry = self.users.get(user)
        expected = entry.token_sha256 if entry else "0" * 64
        if not hmac.compare_digest(hash_token(token), expected) or entry is None:
            raise AccessError(f"user {user!r}: unknown user or wrong token")
        return Actor(user, frozenset(entry.roles), authenticated=True)


@dataclass(frozen=True)
class Actor:
    """Someone asking to change production, and what they are allowed to do."""

    name: str
    roles: frozenset[str]
    authenticated: bool = False

    def require(self, role: Role, action: str) -> None:
        if role not in self.roles:
            how = "" if self.authenticated else " (sign in with a user that has it: `mmops users add NAME --role ...`)"
            raise AccessError(f"{self.name!r} may not {action}: that needs the role {role!r}{how}")


def local_actor(access: AccessList, name: str) -> Actor | None:
    """The person at the command line of a single-user workdir (no users configured): may promote, not approve."""
    return Actor(name, frozenset({"promote"})) if not access.users else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_access(path: Path) -> AccessList:
    """The access list in `path`; an absent file means no users."""
    if not path.is_file():
        return AccessList()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return AccessList.model_validate(data)
    except yaml.YAMLError as error:
        raise AccessError(f"{path}: not valid YAML ({error})") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise AccessError(
            f"{path}: {problems} (expected users: {{NAME: {{roles: [promote|approve, ...], token_sha256: HEX}}}})"
        ) from None


def add_user(path: Path, name: str, roles: list[Role]) -> str:
    """Add (or re-key) a user; returns the new token, which is stored only as its hash."""
    access = load_access(path)
    token = secrets.token_urlsafe(24)
    try:
        ordered = [role for role in ROLES if role in roles] + sorted(set(roles) - set(ROLES))
        entry = UserEntry(roles=ordered, token_sha256=hash_token(token))
        updated = AccessList(users={**access.users, name: entry})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise AccessError(f"cannot add user {name!r}: {problems} (roles allowed: {', '.join(ROLES)})") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(updated.model_dump(mode="json"), sort_keys=True), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return token
