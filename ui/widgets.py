"""Reusable widgets. Each reads core through the runtime and holds no business logic."""
from __future__ import annotations


import streamlit as st

from core.console import telemetry
from core.i18n import Msg
from core.work.outcomes import degraded_of, problem_msgs
from core.infra.feeds import EventFeed
from core.work.runs import RunView, job_summaries, list_runs
from core.console.usage import run_usage
from core.runtime import Runtime

from .access import has_control, require_control
from .i18n import fmt_time, language_picker, show, status_label, t, zone_caption  # noqa: F401 - fmt_time for pages
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
        return t("widgets.duration_s", s=seconds)
    minutes, s = divmod(int(seconds), 60)
    return t("widgets.duration_min", m=minutes, s=s) if minutes < 60 else \
        t("widgets.duration_h", h=minutes // 60, m=minutes % 60)


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
        label = t("widgets.alerts_firing_one" if len(firing) == 1 else "widgets.alerts_firing_many", n=len(firing))
        st.sidebar.markdown(f":red-badge[{label}] {names}")


def problems_banner(rt: Runtime) -> None:
    for text in dict.fromkeys(show(p) for p in rt.problems):  # one banner per distinct problem
        st.error(text, icon="⚠️")
    if not rt.db.ok:
        st.caption(t("widgets.degraded_db"))
        # rebuilding the runtime is a control action: a visitor without control cannot set it off
        if has_control(rt) and st.button(t("widgets.retry_connecting"), key="retry_runtime"):
            reload_runtime()
            st.rerun()


_MODE_ROLES = ("QUERY_ENGINE", "MEDIA_ENGINE", "INSIGHT_ENGINE", "REPORT_ENGINE")


def llm_roles(rt: Runtime) -> list[str]:
    """The roles an analysis would give an LLM now: none when SHOAL_MODE=offline."""
    if rt.settings["SHOAL_MODE"] == "offline":
        return []
    return [r for r in _MODE_ROLES if rt.settings.llm_configured(r)]


def offline_effective(rt: Runtime) -> bool:
    """An analysis started now runs offline (SHOAL_MODE=offline, or no LLM role configured): what
    the header says and what Home's "Offline analysis" box shows."""
    return not llm_roles(rt)


def mode_caption(rt: Runtime) -> str:
    roles = llm_roles(rt)
    if not roles:
        return t("widgets.mode_offline_setting" if rt.settings["SHOAL_MODE"] == "offline" else "widgets.mode_offline")
    return t("widgets.mode_llm", roles=", ".join(r.split("_")[0].lower() for r in roles))


def admin_unlocked(rt: Runtime, key: str = "admin") -> bool:
    """The control-action guard (ui.access.require_control): open on localhost without a password,
    the password when one is set, turned off (with the reason) for a remote visitor otherwise."""
    return require_control(rt, key)


def usage_line(rt: Runtime, run_id: str, role: str | None = None) -> str:
    """A run's (or one role's) LLM totals in one line; cost shows 'unpriced' rather than a wrong $0."""
    u = run_usage(rt.db, run_id, rt.prices, role=role)
    if u.get("error"):
        return show(u["error"])
    if not u["calls"]:
        return t("widgets.usage_none_offline" if rt.settings["SHOAL_MODE"] == "offline" else "widgets.usage_none")
    unpriced = t("widgets.usage_unpriced", models=", ".join(u["unpriced_models"])) if u["unpriced_models"] else ""
    return t("widgets.usage", calls=u["calls"], tokens_in=u["input_tokens"], tokens_out=u["output_tokens"],
             errors=u["errors"], retries=u["retries"], cost=u["cost_label"], unpriced=unpriced)


def outcome_notice(run: RunView) -> None:
    """What went wrong in a run that otherwise ended (completed_degraded, report_failed): each reason
    with its fix, in plain words (core.work.outcomes.run_problems)."""
    problems = problem_msgs(run.status, run.params, run.error, run.id)
    if problems:
        st.warning("\n".join(f"- {show(p)}" for p in problems), icon="⚠️")


def outcome_short(run: RunView) -> str:
    """The reasons of a degraded run in a few words, for a table cell ('' when there are none)."""
    reasons = [t("widgets.reason_short", reason=show(Msg(f"widgets.reason_{d['reason']}")), engine=d.get("engine", ""))
               for d in degraded_of(run.params)]
    if run.status == "report_failed":
        reasons.insert(0, status_label("report_failed"))
    return ", ".join(reasons)


def arrow_table(rows: list[dict]):
    """Rows (dicts; the first row's keys are the columns) as an Arrow table for st.dataframe, which
    sends it as it is. A column whose values are all bool, int or float keeps that type; any other is
    text. Built by pyarrow's JSON reader: pyarrow's own constructors (`pa.array`, `Table.from_pylist`)
    import pandas when it is installed, 0.5 s of Home's first run on a cold start (bench/cold_start.py).
    Pass it with `lazy=False`: deciding whether to send a table in chunks imports pandas too."""
    import io
    import json

    import pyarrow as pa
    from pyarrow import json as pa_json

    kinds = {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}
    names = list(rows[0]) if rows else []
    types = {}
    for name in names:
        seen = {type(r.get(name)) for r in rows} - {type(None)}
        types[name] = kinds.get(seen.pop() if len(seen) == 1 else None, pa.string())
    schema = pa.schema(list(types.items()))
    if not rows:
        return schema.empty_table()

    def cell(name: str, value):
        if value is None or value != value:  # NaN: an empty cell (JSON has no NaN)
            return None
        return str(value) if types[name] == pa.string() else value

    lines = "\n".join(json.dumps({n: cell(n, r.get(n)) for n in names}, ensure_ascii=False) for r in rows)
    return pa_json.read_json(io.BytesIO(lines.encode("utf-8")), read_options=pa_json.ReadOptions(use_threads=False),
                             parse_options=pa_json.ParseOptions(explicit_schema=schema))


RUN_PARAM = "run"  # ?run=<id>: the run a link opens (Home's links to the report, engine and forum pages)


def run_picker(rt: Runtime, key: str, kind: str | None = None, label: str | None = None) -> RunView | None:
    """A picker of the newest runs (of one kind). A link may name the run to open (`?run=<id>`, as
    Home's do): it is chosen once, then the reader's own choice holds."""
    runs = list_runs(rt.db, limit=50, kind=kind) if rt.db.ok else []
    if not runs:
        return None
    labels = {r.id: f"{r.id} · {status_label(r.status)} · {fmt_time(r.created_at)} · {r.topic[:40]}" for r in runs}
    wanted = run_from_link()
    if wanted in labels:
        st.session_state[key] = wanted
    chosen = st.selectbox(label or t("widgets.run"), options=list(labels), format_func=labels.get, key=key)
    return next((r for r in runs if r.id == chosen), None)


def run_from_link() -> str | None:
    """The run a link asked this page to open (`?run=<id>`), once: the parameter is removed, so the
    reader's own choice holds afterwards. A page with its own picker (the forum's) selects it itself."""
    try:
        wanted = st.query_params.get(RUN_PARAM)
        if wanted:
            del st.query_params[RUN_PARAM]
        return wanted or None
    except Exception:  # noqa: BLE001 - outside a session
        return None


def jobs_table(rt: Runtime, run_id: str) -> None:
    import pandas as pd  # not at the top: a page without a table does not load pandas

    jobs = job_summaries(rt.db, run_id)
    if not jobs:
        st.caption(t("widgets.no_jobs"))
        return
    c = {name: t(f"widgets.col_{name}") for name in ("job", "kind", "status", "progress", "attempt", "owner",
                                                     "heartbeat", "stalled", "message", "error", "trace")}
    df = pd.DataFrame([{
        c["job"]: j.name, c["kind"]: j.kind, c["status"]: status_label(j.status), c["progress"]: j.progress,
        c["attempt"]: f"{j.attempt}/{j.max_attempts}", c["owner"]: j.lease_owner or "",
        c["heartbeat"]: fmt_time(j.heartbeat_at), c["stalled"]: j.stalled, c["message"]: show(j.message),
        c["error"]: j.error or "", c["trace"]: j.trace_id,
    } for j in jobs])
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={c["progress"]: st.column_config.ProgressColumn(c["progress"], min_value=0.0,
                                                                               max_value=1.0)})


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
        st.caption(t("widgets.events_db_down"))
        return
    feed = feed_for(key, rt, run_id)
    feed.poll(rt.events)
    if not feed.buffer:
        st.caption(t("widgets.no_events"))
        return

    c = {name: t(f"widgets.col_{name}") for name in ("id", "time", "type", "source", "run", "job", "trace", "detail")}
    rows = [{c["id"]: e.id, c["time"]: fmt_time(e.ts, with_date=False), c["type"]: e.type, c["source"]: e.source,
             c["run"]: e.run_id or "", c["job"]: e.job_id or "", c["trace"]: e.trace_id,
             c["detail"]: ", ".join(f"{k}={v}" for k, v in list(e.payload.items())[:4])} for e in reversed(feed.buffer)]
    st.dataframe(arrow_table(rows), hide_index=True, width="stretch", height=height, lazy=False)
    st.caption(t("widgets.feed_cursor", cursor=feed.cursor, shown=len(feed.buffer), kept=feed.maxlen))


@st.fragment(run_every=2)  # a number, not "2s": Streamlit parses a string with pandas
def live_event_feed(key: str, run_id: str | None = None) -> None:
    render_event_feed(key, run_id)
