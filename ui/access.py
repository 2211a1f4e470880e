"""The one guard pages put in front of control actions, and the per-session limit on starting runs.

The decisions are core.infra.access's; this module feeds it the request (request_visitor, which
tests replace with a local or a remote visitor) and renders the password box or the explanation.
"""
from __future__ import annotations

import time

import streamlit as st

from core.infra.access import (DISABLED, OPEN, RATE_WINDOW_S, ControlAccess, Visitor, control_access,
                               password_matches, run_start_allowed, visitor_from)
from core.runtime import Runtime
from ui.i18n import show, t

UNLOCKED = "_admin_ok"
RUN_STARTS = "_run_starts"


def request_visitor() -> Visitor:
    """Where this session's browser comes from, read from st.context (no request: not local)."""
    try:
        headers = dict(st.context.headers)
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - no session context: treated as a remote visitor
        return Visitor(has_request=False)
    return visitor_from(headers, ip)


def control_state(rt: Runtime) -> ControlAccess:
    return control_access(request_visitor(), rt.settings.get("SHOAL_ADMIN_PASSWORD"),
                          force_public=bool(rt.settings.get("SHOAL_PUBLIC")))


def require_control(rt: Runtime, key: str = "admin") -> bool:
    """True when this visitor may use a control action now. Otherwise shows why: the admin password
    box (a right password unlocks the session), or the explanation when control is turned off."""
    access = control_state(rt)
    if access.state == OPEN:
        return True
    if access.state == DISABLED:
        st.info(show(access.reason), icon="🔒")
        return False
    if st.session_state.get(UNLOCKED):
        return True
    typed = st.text_input(t("access.password_label"), type="password", key=f"{key}_pw")
    if typed:
        if password_matches(typed, rt.settings.get("SHOAL_ADMIN_PASSWORD")):
            st.session_state[UNLOCKED] = True
            return True
        st.error(t("access.wrong_password"))
    return False


def has_control(rt: Runtime) -> bool:
    """Whether this session may use control actions now, without showing anything: for a button
    placed away from its page's require_control (which shows the password box or the reason)."""
    access = control_state(rt)
    return access.state == OPEN or (access.state != DISABLED and bool(st.session_state.get(UNLOCKED)))


def allow_run_start(rt: Runtime) -> bool:
    """Whether this session may start one more run (analysis, engine re-run, report) within its
    hourly limit; when not, says so and when to try again. count_run_start() records a start."""
    limit = int(rt.settings.get("SHOAL_RUNS_PER_SESSION_PER_HOUR") or 0)
    decision = run_start_allowed(st.session_state.get(RUN_STARTS, ()), time.time(), limit)
    if not decision.allowed:
        st.error(decision.message(limit), icon="⏳")
    return decision.allowed


def count_run_start() -> None:
    """Record a run this session started (after it was queued: a refused topic costs nothing)."""
    now = time.time()
    st.session_state[RUN_STARTS] = [t for t in st.session_state.get(RUN_STARTS, ()) if now - t < RATE_WINDOW_S] + [now]


def server_path_import_allowed(rt: Runtime) -> bool:
    return bool(rt.settings.get("SHOAL_ALLOW_SERVER_PATH_IMPORT"))


SERVER_PATH_OFF = ("Importing from a folder on the server is turned off (SHOAL_ALLOW_SERVER_PATH_IMPORT): a visitor "
                   "could otherwise read any folder the app can. Upload the log files instead, or set "
                   "SHOAL_ALLOW_SERVER_PATH_IMPORT=true where the app runs.")
