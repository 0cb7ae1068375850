"""The Promote page through Streamlit's AppTest: read-only for everyone, changes for signed-in users with the right role.

Changes are made on a copy of the pipeline's workdir (promotion_workdir in conftest.py); the session's workdir is
only read.
"""

from __future__ import annotations

import pytest
from app_testing import open_app, selectbox
from promotion_users import APPROVER, BOTH_ROLES, PROMOTER
from streamlit.testing.v1 import AppTest

from dashboards.promotion_actions import request_promotion
from mmops.settings import Settings
from registry.access import Actor, add_user
from registry.audit import read_events
from registry.lineage import LineageStore, alias_timeline
from registry.model_versions import PRODUCTION, alias_version
from registry.tracking import client_for

PAGE = "views/promote.py"
SIGNED_IN = "promote-signed-in"

pytestmark = pytest.mark.slow


def buttons(app: AppTest) -> dict[str, bool]:
    """Each button's label, and whether it can be pressed."""
    return {button.label: not button.disabled for button in app.button}


def text_input(app: AppTest, label: str):
    return next(field for field in app.text_input if field.label == label)


def press(app: AppTest, label: str) -> AppTest:
    next(button for button in app.button if button.label == label).click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def sign_in(app: AppTest, user: str, token: str) -> AppTest:
    text_input(app, "user name").input(user)
    text_input(app, "token").input(token)
    return press(app, "Sign in")


def production(workdir) -> str | None:
    return alias_version(client_for(Settings.for_workdir(workdir.path)), workdir.model, PRODUCTION)


def last_events(workdir, count: int) -> list[tuple[str, str | None, str | None, str, str]]:
    store = LineageStore(Settings.for_workdir(workdir.path).lineage_url)
    try:
        with store.session() as session:
            timeline = alias_timeline(session, workdir.model)
    finally:
        store.dispose()
    return [(e.action, e.version, e.previous, e.actor, e.reason) for e in timeline[-count:]]


def test_without_users_the_page_is_read_only_and_says_how_to_add_one(monkeypatch, pipeline_workdir):
    app = open_app(monkeypatch, pipeline_workdir.path, PAGE)
    assert app.metric[0].label == "production version" and app.metric[0].value == f"v{pipeline_workdir.production}"
    versions, events = (frame.value for frame in app.dataframe)
    assert list(versions["version"]) == ["1", "2"] and "vqa_exact_match" in versions.columns
    assert list(events["actor"]) == ["mmops-gate"] * len(events) and events["action"].iloc[0] == "promote"
    assert "No pending promotion requests." in [c.value for c in app.caption]
    assert "No users are configured" in app.info[0].value
    assert app.code[0].value == f"mmops users add NAME --role promote --role approve --workdir {pipeline_workdir.path}"
    assert buttons(app) == {} and not app.text_input


def test_anonymous_visitors_see_pending_requests_with_their_evidence_and_no_actions(monkeypatch, promotion_workdir):
    settings = Settings.for_workdir(promotion_workdir.path)
    rita = Actor(PROMOTER, frozenset({"promote"}), authenticated=True)
    evidence = {"via": "test", "candidate": {"vqa_exact_match": 0.5}}
    request_promotion(settings, rita, promotion_workdir.model, promotion_workdir.earlier, "v1 answers colours better", evidence)

    app = open_app(monkeypatch, promotion_workdir.path, PAGE)
    assert buttons(app) == {"Sign in": True}
    assert [(t.label, t.proto.type) for t in app.text_input] == [("user name", 0), ("token", 1)]  # 1: a password field
    requests = app.dataframe[1].value
    assert list(requests["requested by"]) == [PROMOTER] and list(requests["version"]) == [promotion_workdir.earlier]
    assert list(requests["reason"]) == ["v1 answers colours better"] and requests["when"].iloc[0].endswith(" UTC")
    assert app.json[0].value.replace(" ", "").replace("\n", "").startswith('{"via":"test","candidate":{"vqa_exact_match":0.5}')
    assert app.dataframe[2].value["action"].iloc[0] == "request", "the last alias events, newest first"


def test_a_wrong_token_or_an_unknown_user_is_refused_and_shows_no_actions(monkeypatch, promotion_workdir):
    app = open_app(monkeypatch, promotion_workdir.path, PAGE)
    for user, token in ((PROMOTER, "not-the-token"), (PROMOTER, promotion_workdir.tokens[APPROVER]), ("mallory", "x")):
        sign_in(app, user, token)
        assert app.error[0].value == f"user {user!r}: unknown user or wrong token"
        assert buttons(app) == {"Sign in": True} and SIGNED_IN not in app.session_state


def test_a_promoter_rolls_back_and_the_alias_the_timeline_the_audit_log_and_the_models_page_show_it(
    monkeypatch, promotion_workdir, pipeline_workdir
):
    work, model = promotion_workdir, promotion_workdir.model
    app = sign_in(open_app(monkeypatch, work.path, PAGE), PROMOTER, work.tokens[PROMOTER])
    assert buttons(app) == {"Sign out": True, "Request promotion": True, "Promote now": True, "Roll back": True}
    assert f"Returns production from v{work.production} to v{work.earlier}, the version before it." in [c.value for c in app.caption]

    press(app, "Roll back")
    assert "A rollback needs a reason" in app.error[0].value and production(work) == work.production

    reason = "v2 misreads colours in review"
    text_input(app, "reason for the rollback").input(reason)
    press(app, "Roll back")
    assert not app.error and app.success[0].value == (
        f"{model}: production rolled back to v{work.earlier} (from v{work.production}), by {PROMOTER}."
    )
    assert app.metric[0].value == f"v{work.earlier}" and production(work) == work.earlier
    assert last_events(work, 1) == [("rollback", work.earlier, work.production, PROMOTER, reason)]
    audit = read_events(Settings.for_workdir(work.path).audit_log, model)[-1]
    assert (audit["action"], audit["version"], audit["previous"], audit["actor"], audit["reason"]) == (
        "rollback", work.earlier, work.production, PROMOTER, reason,
    )
    assert buttons(app)["Roll back"] is False, "nothing earlier to return to now"
    assert any("No earlier production version to return to" in c.value for c in app.caption)
    assert text_input(app, "reason for the rollback").value == "", "the reason is cleared after the change"

    app.switch_page("views/models.py").run()
    assert app.metric[0].value == f"v{work.earlier}"
    timeline = app.dataframe[1].value
    assert list(timeline.iloc[-1][["action", "version", "actor", "reason"]]) == ["rollback", work.earlier, PROMOTER, reason]

    assert production(pipeline_workdir) == pipeline_workdir.production, "the session's workdir is not changed"
    assert not (pipeline_workdir.path / "access.yaml").exists()


def test_an_approver_approves_another_users_request_and_production_moves(monkeypatch, promotion_workdir):
    work, model = promotion_workdir, promotion_workdir.model
    app = sign_in(open_app(monkeypatch, work.path, PAGE), PROMOTER, work.tokens[PROMOTER])
    selectbox(app, "version to request").select(work.earlier)
    text_input(app, "reason for the request").input("v1 answers colours better")
    press(app, "Request promotion")
    assert "is waiting for an approver; production stays v2" in app.success[0].value and production(work) == work.production
    assert list(app.dataframe[1].value["requested by"]) == [PROMOTER]
    request_id = int(app.dataframe[1].value["request"].iloc[0].lstrip("#"))

    press(app, "Sign out")
    sign_in(app, APPROVER, work.tokens[APPROVER])
    assert buttons(app) == {"Sign out": True, f"Approve #{request_id}": True}, "an approver may not request, promote or roll back"
    press(app, f"Approve #{request_id}")
    assert "An approval needs a reason" in app.error[0].value and production(work) == work.production

    text_input(app, f"reason for approving #{request_id}").input("checked the samples")
    press(app, f"Approve #{request_id}")
    assert app.success[0].value == f"{model}: request #{request_id} approved by {APPROVER}; production -> v{work.earlier} (was v{work.production})."
    assert production(work) == work.earlier and app.metric[0].value == f"v{work.earlier}"
    assert [e[:4] for e in last_events(work, 3)] == [
        ("request", work.earlier, work.production, PROMOTER),
        ("approve", work.earlier, work.production, APPROVER),
        ("promote", work.earlier, work.production, APPROVER),
    ]
    assert "No pending promotion requests." in [c.value for c in app.caption]


def test_nobody_approves_their_own_request(monkeypatch, promotion_workdir):
    work = promotion_workdir
    app = sign_in(open_app(monkeypatch, work.path, PAGE), BOTH_ROLES, work.tokens[BOTH_ROLES])
    text_input(app, "reason for the request").input("my own idea")
    press(app, "Request promotion")
    request_id = int(app.dataframe[1].value["request"].iloc[0].lstrip("#"))
    assert buttons(app) == {"Sign out": True, "Request promotion": True, "Promote now": True, "Roll back": True}
    assert f"#{request_id} (v{work.earlier}) is your own request: another approver must approve it." in [c.value for c in app.caption]


def test_a_user_given_a_new_token_is_signed_out(monkeypatch, promotion_workdir):
    app = sign_in(open_app(monkeypatch, promotion_workdir.path, PAGE), PROMOTER, promotion_workdir.tokens[PROMOTER])
    assert "Roll back" in buttons(app)
    add_user(Settings.for_workdir(promotion_workdir.path).access_file, PROMOTER, ["promote"])
    app.run()
    assert f"{PROMOTER} was signed out" in app.warning[0].value and buttons(app) == {"Sign in": True}
