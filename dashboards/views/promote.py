"""Promote: for everyone, a model's production version, versions, pending requests and last alias events;
for users signed in with a token from the workdir's access file, the changes their roles allow."""

from collections.abc import Callable

import streamlit as st

from dashboards.display import markdown_literal, utc_text
from dashboards.models_overview import model_overview, timeline_table, version_table
from dashboards.page_setup import (
    current_aliases,
    mlflow_warning,
    models_or_stop,
    open_stores,
)
from dashboards.promotion_actions import (
    add_user_command,
    allowed_actions,
    approve_request,
    current_actor,
    promote_now,
    request_promotion,
    request_table,
    roll_back,
    rollback_option,
    sign_in,
    version_evidence,
)
from mmops.errors import MmopsError
from registry.access import AccessError, load_access
from registry.lineage import production_stack
from registry.model_versions import PRODUCTION
from registry.promotion import pending_requests

SIGNED_IN, OUTCOME, CHANGES = "promote-signed-in", "promote-outcome", "promote-changes"
SHOWN_EVENTS = 10


def act(change: Callable[[], str]) -> None:
    """Run one change; on success clear cached data and redraw the page with the outcome and empty forms."""
    try:
        outcome = change()
    except MmopsError as error:
        st.error(str(error))
        return
    st.cache_data.clear()
    st.session_state[OUTCOME] = outcome
    st.session_state[CHANGES] = st.session_state.get(CHANGES, 0) + 1  # new form keys: the browser drops what was typed
    st.rerun()


st.title("Promote")
stores = open_stores()
settings = stores.settings
mlflow_warning(stores, "The production alias and the other aliases")
with stores.lineage.session() as session:
    names = models_or_stop(session, settings)
    name = st.selectbox("model", names)
    aliases = current_aliases(stores, session, [name])[name]
    overview = model_overview(session, name, aliases)
    pending = pending_requests(session, name)
    stack = production_stack(session, name)
production = aliases.get(PRODUCTION)

if (outcome := st.session_state.pop(OUTCOME, None)) is not None:
    st.success(outcome)
st.metric("production version", "none" if production is None else f"v{production}")
st.subheader("Versions")
st.dataframe(version_table(overview), hide_index=True)
st.subheader("Pending promotion requests")
if pending:
    st.dataframe(request_table(pending), hide_index=True)
    with st.expander("evidence of each request"):
        for request in pending:
            st.caption(f"#{request.id}: v{request.version} requested by {request.requester}")
            st.json(request.evidence, expanded=False)
else:
    st.caption("No pending promotion requests.")
st.subheader("Last alias events")
if overview.timeline:
    st.dataframe(timeline_table(overview.timeline[-SHOWN_EVENTS:])[::-1], hide_index=True)
    st.caption(f"Newest first, at most {SHOWN_EVENTS}; the Models page lists them all.")
else:
    st.caption("No alias events yet: no version has been promoted.")

st.header("Change production", divider="gray")
try:
    access = load_access(settings.access_file)
except AccessError as error:
    st.error(f"{error}. Until the access file is fixed this page is read-only.")
    st.stop()
if not access.users:
    st.info(
        f"No users are configured for this workdir (`{settings.access_file}`), so this page is read-only. "
        "Add a user who may promote and approve (their token is printed once):"
    )
    st.code(add_user_command(settings.workdir), language="bash")
    st.stop()

signed_in = st.session_state.get(SIGNED_IN)
actor = None if signed_in is None else current_actor(access, signed_in)
if signed_in is not None and actor is None:
    del st.session_state[SIGNED_IN]
    st.warning(f"{signed_in.actor.name} was signed out: the access file no longer lists that user with that token.")
if actor is None:
    with st.form("sign-in"):
        user = st.text_input("user name", key="sign-in-user")
        token = st.text_input("token", type="password", key="sign-in-token")
        signing_in = st.form_submit_button("Sign in")
    if signing_in:
        try:
            st.session_state[SIGNED_IN] = sign_in(access, user, token)
        except AccessError as error:
            st.error(str(error))
            st.stop()
        finally:
            st.session_state.pop("sign-in-token", None)  # only its hash is kept
        st.rerun()
    st.caption("Everything above is read-only; sign in with your mmops user and token to request, promote, approve or roll back.")
    st.stop()

who, sign_out = st.columns([5, 1])
who.markdown(f"Signed in as **{markdown_literal(actor.name)}** (roles: {', '.join(sorted(actor.roles))})")
if sign_out.button("Sign out"):
    del st.session_state[SIGNED_IN]
    st.rerun()

allowed = allowed_actions(actor, pending)
generation = st.session_state.get(CHANGES, 0)
versions = [row.version for row in overview.versions]
others = [v for v in versions if v != production]
metrics = {row.version: row.metrics for row in overview.versions}

if allowed.request or allowed.promote or allowed.rollback:
    request_column, promote_column, rollback_column = st.columns(3)
    with request_column.form(f"request-{name}"):
        st.subheader("Request promotion")
        st.caption("An approver carries it out.")
        requested = st.selectbox("version to request", others, format_func=lambda v: f"v{v}", key=f"request-version-{name}-{generation}")
        request_reason = st.text_input("reason for the request", key=f"request-reason-{name}-{generation}")
        requesting = st.form_submit_button("Request promotion", disabled=not others)
    with promote_column.form(f"promote-{name}"):
        st.subheader("Promote now")
        st.caption("Moves production at once.")
        promoted = st.selectbox("version to promote", others, format_func=lambda v: f"v{v}", key=f"promote-version-{name}-{generation}")
        promote_reason = st.text_input("reason for promoting", key=f"promote-reason-{name}-{generation}")
        promoting = st.form_submit_button("Promote now", disabled=not others)
    option = rollback_option(stack, production)
    with rollback_column.form(f"rollback-{name}"):
        st.subheader("Roll back")
        st.caption(option.explanation)
        rollback_reason = st.text_input("reason for the rollback", key=f"rollback-reason-{name}-{generation}", disabled=option.target is None)
        rolling_back = st.form_submit_button("Roll back", disabled=option.target is None)
    if not others:
        st.caption(f"Every version of {name} is in production: there is nothing to request or promote.")
    if requesting:
        act(lambda: request_promotion(settings, actor, name, requested, request_reason,
                                      version_evidence(metrics, requested, production)))
    if promoting:
        act(lambda: promote_now(settings, actor, name, promoted, promote_reason,
                                version_evidence(metrics, promoted, production)))
    if rolling_back:
        act(lambda: roll_back(settings, actor, name, rollback_reason))

if "approve" in actor.roles:
    st.subheader("Approve requests")
    approving = None
    for request in allowed.approvable:
        with st.form(f"approve-{name}-{request.id}"):
            st.markdown(
                f"**#{request.id}**: v{request.version}, requested by {markdown_literal(request.requester)} "
                f"at {utc_text(request.at)}: {markdown_literal(request.reason)}"
            )
            reason = st.text_input(f"reason for approving #{request.id}", key=f"approve-reason-{name}-{request.id}-{generation}")
            if st.form_submit_button(f"Approve #{request.id}"):
                approving = (request.id, reason)
    for request in allowed.own_requests:
        st.caption(f"#{request.id} (v{request.version}) is your own request: another approver must approve it.")
    if not pending:
        st.caption("No pending promotion requests to approve.")
    if approving is not None:
        request_id, reason = approving
        act(lambda: approve_request(settings, actor, name, request_id, reason))
