"""The Promote page's logic without Streamlit: signing in, what each role may do, where a rollback goes, reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from mlflow.exceptions import MlflowException

from dashboards.errors import DashboardError
from dashboards.promotion_actions import (
    SignedIn,
    add_user_command,
    allowed_actions,
    current_actor,
    promotion_workflow,
    request_table,
    roll_back,
    rollback_option,
    sign_in,
    version_evidence,
)
from mmops.settings import Settings
from registry.access import AccessError, Actor, add_user, load_access
from registry.promotion import PromotionRequest

AT = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)


def request(number: int, requester: str, version: str = "2") -> PromotionRequest:
    return PromotionRequest(number, "tiny-llava", version, requester, f"reason {number}", {"candidate": {"em": 0.5}}, AT)


PENDING = (request(4, "rita"), request(5, "pia", "3"))


@pytest.fixture
def access_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "access.yaml"
    return path, {"rita": add_user(path, "rita", ["promote"]), "pia": add_user(path, "pia", ["promote", "approve"])}


def test_signing_in_takes_the_users_token_and_keeps_only_its_hash(access_file):
    path, tokens = access_file
    signed_in = sign_in(load_access(path), " rita ", f"{tokens['rita']}\n")
    assert signed_in.actor == Actor("rita", frozenset({"promote"}), authenticated=True)
    assert tokens["rita"] not in repr(signed_in) and len(signed_in.token_sha256) == 64
    for user, token in (("rita", tokens["pia"]), ("rita", ""), ("nobody", tokens["rita"])):
        with pytest.raises(AccessError, match="unknown user or wrong token"):
            sign_in(load_access(path), user, token)


def test_a_signed_in_user_has_the_roles_the_access_file_gives_now_and_is_signed_out_when_rekeyed(access_file):
    path, tokens = access_file
    signed_in = sign_in(load_access(path), "rita", tokens["rita"])
    assert current_actor(load_access(path), signed_in).roles == {"promote"}
    listed = yaml.safe_load(path.read_text())
    listed["users"]["rita"]["roles"] = ["approve"]
    path.write_text(yaml.safe_dump(listed))
    assert current_actor(load_access(path), signed_in).roles == {"approve"}
    add_user(path, "rita", ["promote"])  # a new token: the old one no longer signs anyone in
    assert current_actor(load_access(path), signed_in) is None
    stranger = SignedIn(Actor("gone", frozenset({"promote"}), authenticated=True), "0" * 64)
    assert current_actor(load_access(path), stranger) is None


def test_each_role_sees_only_its_actions_and_nobody_approves_their_own_request():
    assert allowed_actions(None, PENDING) == allowed_actions(Actor("local", frozenset({"promote", "approve"})), PENDING)
    nothing = allowed_actions(None, PENDING)
    assert not (nothing.request or nothing.promote or nothing.rollback or nothing.approvable or nothing.own_requests)

    promoter = allowed_actions(Actor("rita", frozenset({"promote"}), authenticated=True), PENDING)
    assert promoter.request and promoter.promote and promoter.rollback and promoter.approvable == promoter.own_requests == ()

    approver = allowed_actions(Actor("arno", frozenset({"approve"}), authenticated=True), PENDING)
    assert not (approver.request or approver.promote or approver.rollback)
    assert [r.id for r in approver.approvable] == [4, 5] and approver.own_requests == ()

    both = allowed_actions(Actor("pia", frozenset({"promote", "approve"}), authenticated=True), PENDING)
    assert both.rollback and [r.id for r in both.approvable] == [4] and [r.id for r in both.own_requests] == [5]


@pytest.mark.parametrize(
    ("stack", "current", "target", "explained"),
    [
        (["1", "2"], "2", "1", "from v2 to v1"),
        (["1", "3", "2"], "2", "3", "from v2 to v3"),
        (["1"], "1", None, "production history: v1"),
        ([], None, None, "No version is in production"),
        (["1", "2"], "1", None, "production history: v1 -> v2"),  # MLflow moved without the store: refuse, as the workflow does
    ],
)
def test_a_rollback_returns_to_the_version_below_the_current_one(stack, current, target, explained):
    option = rollback_option(stack, current)
    assert option.target == target and explained in option.explanation


def test_evidence_puts_the_versions_scores_beside_productions():
    metrics = {"1": {"vqa_exact_match": 0.5}, "2": {"vqa_exact_match": 0.75}}
    assert version_evidence(metrics, "2", "1") == {
        "via": "dashboard", "candidate": {"vqa_exact_match": 0.75}, "production_version": "1", "production": {"vqa_exact_match": 0.5},
    }
    assert version_evidence(metrics, "1", None)["production"] is None


def test_pending_requests_as_rows():
    assert request_table(PENDING[:1]) == [
        {"request": "#4", "version": "2", "requested by": "rita", "when": "2026-05-04 03:02:01 UTC", "reason": "reason 4"}
    ]


def test_the_command_to_add_a_user_names_the_workdir_quoted_for_the_shell():
    assert add_user_command(Path("/w/my work")) == "mmops users add NAME --role promote --role approve --workdir '/w/my work'"


def test_a_change_without_a_reason_is_refused_before_any_store_is_opened(tmp_path: Path):
    settings = Settings.for_workdir(tmp_path / "work", env={})
    with pytest.raises(DashboardError, match="A rollback needs a reason"):
        roll_back(settings, Actor("rita", frozenset({"promote"}), authenticated=True), "tiny-llava", "  \n")
    assert not (tmp_path / "work").exists()


def test_mlflow_failures_become_messages_for_the_page(tmp_path: Path):
    settings = Settings.for_workdir(tmp_path, env={})
    refused = pytest.raises(DashboardError, match="MLflow refused the change: RESOURCE_DOES_NOT_EXIST")
    with refused, promotion_workflow(settings) as workflow:
        assert workflow.audit_log == tmp_path / "audit.jsonl"
        raise MlflowException("RESOURCE_DOES_NOT_EXIST")
