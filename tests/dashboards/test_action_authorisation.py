"""Every state-changing action the dashboard offers, called as the page calls it: refused, with nothing changed, for
someone without the role it needs (anonymous visitors included), and recorded in the audit log, exactly once, with
who and why, for someone with it. (tests/security's concern; here, where the promotion workdirs are built.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from promotion_users import APPROVER, PROMOTER

from dashboards.promotion_actions import approve_request, promote_now, request_promotion, roll_back
from mmops.errors import MmopsError
from mmops.settings import Settings
from registry.access import Actor
from registry.audit import read_events
from registry.lineage import LineageStore, alias_timeline
from registry.model_versions import PRODUCTION, alias_version
from registry.tracking import client_for

pytestmark = pytest.mark.slow

ACTIONS = {  # action -> (the role it needs, how the page calls it); w: the workdir's model, versions and pending request
    "promote": ("promote", lambda s, actor, w, reason: promote_now(s, actor, w.model, w.earlier, reason, {})),
    "rollback": ("promote", lambda s, actor, w, reason: roll_back(s, actor, w.model, reason)),
    "request": ("promote", lambda s, actor, w, reason: request_promotion(s, actor, w.model, w.earlier, reason, {})),
    "approve": ("approve", lambda s, actor, w, reason: approve_request(s, actor, w.model, w.request_id, reason)),
}
OTHER_ROLE = {"promote": "approve", "approve": "promote"}
AUDITED_AS = {"approve": "promote"}  # an approval is the promotion it allows, its evidence naming the request


def state(settings: Settings, model: str) -> tuple:
    """What an action would change: the production alias, the audit log, and the lineage store's alias timeline."""
    store = LineageStore(settings.lineage_url)
    try:
        with store.session() as session:
            timeline = len(alias_timeline(session, model))
    finally:
        store.dispose()
    return alias_version(client_for(settings), model, PRODUCTION), len(read_events(settings.audit_log)), timeline


@pytest.fixture
def workdir(promotion_workdir):
    """A promotion workdir with one pending request (by the promoter) for an approver to act on."""
    settings = Settings.for_workdir(promotion_workdir.path)
    request_promotion(settings, Actor(PROMOTER, frozenset({"promote"}), True), promotion_workdir.model, promotion_workdir.earlier,
                      "a request to approve", {})
    request_id = max(e["request"] for e in read_events(settings.audit_log) if e["action"] == "request")
    return settings, SimpleNamespace(model=promotion_workdir.model, earlier=promotion_workdir.earlier, request_id=request_id)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_action_needs_its_role_and_is_audited_once_with_who_and_why(action, workdir):
    settings, work = workdir
    role, act = ACTIONS[action]
    before = state(settings, work.model)
    for outsider in (Actor("visitor", frozenset()), Actor("someone", frozenset({OTHER_ROLE[role]}), True)):
        with pytest.raises(MmopsError, match=f"needs the role '{role}'"):
            act(settings, outsider, work, "should not happen")
        assert state(settings, work.model) == before, f"{outsider.name}'s refused {action} changed something"

    allowed = Actor(APPROVER if role == "approve" else PROMOTER, frozenset({role}), True)
    reason = f"{action} by the authorisation test"
    act(settings, allowed, work, reason)
    events = read_events(settings.audit_log)
    assert len(events) == before[1] + 1
    assert events[-1]["action"] == AUDITED_AS.get(action, action) and events[-1]["actor"] == allowed.name
    assert events[-1]["reason"].startswith(reason)
