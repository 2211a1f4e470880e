"""Reusable widgets. Each reads core through the runtime and holds no business logic."""
from __future__ import annotations


import streamlit as st

from core.console import telemetry
from core.work.outcomes import degraded_of, run_problems
from core.infra.feeds import EventFeed
from core.work.runs import RunView, job_summaries, list_runs
from core.console.usage import run_usage
from core.runtime import Runtime

from .access import require_control
from .i18n import fmt_time, language_picker, status_label, zone_caption  # noqa: F401 - fmt_time for pages
from .runtime import get_runtime, reload_runtime

BADGE_COLORS = {
    "queued": "gray", "pending": "gray", "running": "blue", "cancelling": "orange", "completed": "green",
    "completed_degraded": "orange", "report_failed": "red", "failed": "red", "cancelled": "violet",
    "interrupted": "orange",
    "insufficient_data": "orange", "ok": "green", "warn": "orange",
    "fail": "red",
}


def badge(status: str) -> str:
    """Markdown for a coloured status badge, in the reader's language."""
    return f":{BADGE_COLORS.get(status, 'gray')}-badge[{status_label(status)}]"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes} min {s} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def page_setup(title: str, icon: str = "🐟") -> Runtime:
    """Every page starts here: config, runtime, and a banner for anything degraded."""
    st.set_page_config(page_title=f"{title} · Shoal", page_icon=icon, layout="wide")
    rt = get_runtime()
    language_picker()
    st.sidebar.caption(zone_caption())
    telemetry.record("page.view", session_id=_session_id(), payload={"page": title})
    problems_banner(rt)
    alerts_badge(rt)
    return rt


def _session_id() -> str | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.session_id if ctx else None
    except Exception:  # noqa: BLE001 - telemetry is best effort
        return None


def alerts_badge(rt: Runtime) -> None:
    """Firing alerts, on every page, so an operator notices them anywhere."""
    if rt.alerts is None:
        return
    firing = rt.alerts.firing()
    if firing:
        names = ", ".join(a.rule for a in firing[:4]) + (" …" if len(firing) > 4 else "")
        st.sidebar.markdown(f":red-badge[{len(firing)} alert{'s' if len(firing) > 1 else ''} firing] {names}")


def problems_banner(rt: Runtime) -> None:
    for problem in dict.fromkeys(rt.problems):
        st.error(problem, icon="⚠️")
    if not rt.db.ok:
        st.caption("Shoal is running in a degraded state: nothing can be stored until the database works. "
                   "Fix DATABASE_URL on the Settings page or in the environment, then retry.")
        if st.button("Retry connecting", key="retry_runtime"):
            reload_runtime()
            st.rerun()


def mode_caption(rt: Runtime) -> str:
    roles = [r for r in ("QUERY_ENGINE", "MEDIA_ENGINE", "INSIGHT_ENGINE", "REPORT_ENGINE")
             if rt.settings.llm_configured(r)]
    if not roles:
        return "Mode: **offline analysis** (no LLM configured)"
    return "Mode: **LLM** for " + ", ".join(r.split("_")[0].lower() for r in roles)


def admin_unlocked(rt: Runtime, key: str = "admin") -> bool:
    """The control-action guard (ui.access.require_control): open on localhost without a password,
    the password when one is set, turned off (with the reason) for a remote visitor otherwise."""
    return require_control(rt, key)


def usage_line(rt: Runtime, run_id: str, role: str | None = None) -> str:
    """A run's (or one role's) LLM totals in one line; cost shows 'unpriced' rather than a wrong $0."""
    u = run_usage(rt.db, run_id, rt.prices, role=role)
    if u.get("error"):
        return u["error"]
    if not u["calls"]:
        return "LLM usage: no calls" + (" (offline analysis)" if rt.settings["SHOAL_MODE"] == "offline" else "")
    unpriced = f" (unpriced: {', '.join(u['unpriced_models'])})" if u["unpriced_models"] else ""
    return (f"LLM usage: {u['calls']} calls · {u['input_tokens']:,} in / {u['output_tokens']:,} out tokens · "
            f"{u['errors']} errors · {u['retries']} retries · cost {u['cost_label']}{unpriced}")


def outcome_notice(run: RunView) -> None:
    """What went wrong in a run that otherwise ended (completed_degraded, report_failed): each reason
    with its fix, in plain words (core.work.outcomes.run_problems)."""
    problems = run_problems(run.status, run.params, run.error, run.id)
    if problems:
        st.warning("\n".join(f"- {p}" for p in problems), icon="⚠️")


def outcome_short(run: RunView) -> str:
    """The reasons of a degraded run in a few words, for a table cell ('' when there are none)."""
    reasons = [f"{d['reason']} ({d.get('engine', '')})" for d in degraded_of(run.params)]
    if run.status == "report_failed":
        reasons.insert(0, "report failed")
    return ", ".join(reasons)


def run_picker(rt: Runtime, key: str, kind: str | None = None, label: str = "Run") -> RunView | None:
    runs = list_runs(rt.db, limit=50, kind=kind) if rt.db.ok else []
    if not runs:
        return None
    labels = {r.id: f"{r.id} · {r.status} · {fmt_time(r.created_at)} · {r.topic[:40]}" for r in runs}
    chosen = st.selectbox(label, options=list(labels), format_func=labels.get, key=key)
    return next((r for r in runs if r.id == chosen), None)


def jobs_table(rt: Runtime, run_id: str) -> None:
    import pandas as pd  # not at the top: a page without a table does not load pandas

    jobs = job_summaries(rt.db, run_id)
    if not jobs:
        st.caption("This run has no jobs.")
        return
    df = pd.DataFrame([{
        "job": j.name, "kind": j.kind, "status": j.status, "progress": j.progress, "attempt": f"{j.attempt}/{j.max_attempts}",
        "owner": j.lease_owner or "", "heartbeat": fmt_time(j.heartbeat_at), "stalled": j.stalled,
        "message": j.message, "error": j.error or "", "trace": j.trace_id,
    } for j in jobs])
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})


def feed_for(key: str, rt: Runtime, run_id: str | None = None, maxlen: int = 200) -> EventFeed:
    """The live panel's cursor and bounded buffer, kept in session state."""
    feed = st.session_state.get(key)
    if not isinstance(feed, EventFeed) or feed.run_id != run_id:
        feed = EventFeed(run_id=run_id, maxlen=maxlen)
        if rt.db.ok:
            feed.start_at_latest(rt.events)
        st.session_state[key] = feed
    return feed


def render_event_feed(key: str, run_id: str | None = None, height: int = 320) -> None:
    """Body of the live events panel: reads only events after the cursor. Called by a fragment."""
    rt = get_runtime()
    if not rt.db.ok:
        st.caption("No events: the database is unavailable.")
        return
    feed = feed_for(key, rt, run_id)
    feed.poll(rt.events)
    if not feed.buffer:
        st.caption("No events yet.")
        return
    import pandas as pd  # here, not at the top: a Home with nothing to list does not load pandas

    rows = [{"id": e.id, "time": e.ts.strftime("%H:%M:%S"), "type": e.type, "source": e.source,
             "run": e.run_id or "", "job": e.job_id or "", "trace": e.trace_id,
             "detail": ", ".join(f"{k}={v}" for k, v in list(e.payload.items())[:4])} for e in reversed(feed.buffer)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=height)
    st.caption(f"cursor {feed.cursor} · {len(feed.buffer)} shown (latest {feed.maxlen} kept)")


@st.fragment(run_every=2)  # a number, not "2s": Streamlit parses a string with pandas
def live_event_feed(key: str, run_id: str | None = None) -> None:
    render_event_feed(key, run_id)
