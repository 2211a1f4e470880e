"""The Monitor page's components: the operations console an operator keeps open all day.

One plain function per tab, `show_<tab>(rt, key)`, rendering what core computes (core.console.usage,
core.llm.pricing, core.console.telemetry, core.console.traces, core.console.resources, core.console.alerts, core.console.logview,
core.console.timeline, core.console.health); here are only display choices, ordering and small totals.

The page opens one tab at a time (st.tabs with on_change="rerun"), so a hidden tab costs
nothing and its live parts do not poll. Live parts are fragments with run_every whose bodies
are plain functions (`render_overview`, `render_logs`, `render_resources`), so a test can run
them directly: AppTest never fires run_every.

State kept in session state, per `key`:
  {key}_tab             the open tab (the st.tabs widget)
  {key}_selected_run    the run chosen on any tab (shared: Runs & jobs, Usage, Traces)
  {key}_health          bounded history of health-check results (one entry per overview refresh)
  {key}_logview         the LogView tailing the log files by byte offset
  {key}_trace           the Traces tab's input (a run's "Show its trace" button fills it)

Reading functions in core never raise for a database problem: they return an empty frame whose
attrs["error"] is shown here as one clear message. With no database at all, the page banner
already says why, so each tab says only what it cannot show.
"""
from __future__ import annotations

import json
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import altair as alt
import pandas as pd
import streamlit as st

from core.console.alerts import OPS, SEVERITIES, rules_from_data, save_rules
from core.console.health import run_checks
from core.infra.logs import ENGINE_SINKS
from core.console.logview import LogView
from core.infra.models import from_epoch, utcnow
from core.work.probe import probe_jobs
from core.work.runs import RunView, list_runs, status_counts
from core.runtime import Runtime
from core.console.telemetry import query_telemetry, telemetry_types
from core.console.timeline import run_timeline, timeline_summary
from core.console.traces import trace_bundle
from core.console.usage import (
    error_timeline,
    errors_by_kind,
    latency_table,
    llm_calls_frame,
    retries_by_kind,
    retry_events_frame,
    run_usage,
    usage_table,
)

from ui.runtime import get_runtime
from ui.widgets import admin_unlocked, badge, fmt_duration, fmt_time, jobs_table, live_event_feed

KEY = "monitor"
TAB_OVERVIEW, TAB_RUNS, TAB_USAGE, TAB_LATENCY, TAB_TELEMETRY, TAB_TRACES, TAB_RESOURCES, TAB_LOGS, TAB_ALERTS = (
    "Overview", "Runs & jobs", "Usage & cost", "Latency & errors", "Telemetry", "Traces", "Resources", "Logs",
    "Alerts")

HEALTH_HISTORY = 360  # overview refreshes kept (30 min at one every 5 s)
HEALTH_SHOWN = 30
MAX_CALLS = 50_000  # LLM call rows read for the usage and latency tabs (newest first)
MAX_BARS = 2_000  # Gantt bars drawn; the summary always covers every bar
LOG_LINES = 500
WINDOWS: dict[str, timedelta | None] = {"1 h": timedelta(hours=1), "24 h": timedelta(days=1),
                                        "7 days": timedelta(days=7), "30 days": timedelta(days=30),
                                        "90 days": timedelta(days=90), "all": None}
LEVEL_CHOICES = ("ALL", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENGINE_CHOICES = ("all", "app", *ENGINE_SINKS)
RULE_COLUMNS = ["name", "metric", "op", "threshold", "for_seconds", "severity", "description", "enabled"]
KNOWN_METRICS = ("cpu_percent", "memory_percent", "disk_percent", "process_rss_bytes", "process_threads",
                 "llm_calls", "llm_error_rate_pct", "llm_p95_latency_ms", "stalled_jobs", "telemetry_dropped",
                 "telemetry_buffered")


# ---------------------------------------------------------------------------------------- helpers


def _table(frame: pd.DataFrame, **kwargs) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", **kwargs)


def _no_database(rt: Runtime, what: str) -> bool:
    """True (and one honest line) when the database is unavailable."""
    if rt.db.ok:
        return False
    st.info(f"{what} needs the database, which is unavailable (see the message at the top of the page).")
    return True


def _frame_error(frame: pd.DataFrame) -> bool:
    error = frame.attrs.get("error") if frame is not None else None
    if error:
        st.error(error)
    return bool(error)


def _epoch_text(ts: float | None) -> str:
    return fmt_time(from_epoch(ts)) if ts else "—"


def _since(window: str) -> datetime | None:
    delta = WINDOWS.get(window)
    return utcnow() - delta if delta else None


def _json(value: Any, limit: int = 500) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    except Exception:  # noqa: BLE001 - a payload is shown, never a reason to fail
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _payload_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    if "payload" in frame.columns and not frame.empty:
        frame = frame.copy()
        frame["payload"] = frame["payload"].map(_json)
    return frame


def _chart(chart: alt.Chart, height: int | None = None) -> None:
    if height is None:
        st.altair_chart(chart, width="stretch")
    else:
        st.altair_chart(chart, width="stretch", height=height)


def _time_x(field: str, title: str, fmt: str | None = None) -> alt.X:
    # Times are naive UTC: a UTC scale shows them as stored, whatever the browser's time zone.
    axis = alt.Axis(format=fmt, labelOverlap=True) if fmt else alt.Axis(labelOverlap=True)
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc"), axis=axis)


def _with_end(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """`bucket_end` beside `bucket`, so a bar spans its whole period on a time axis."""
    start = pd.to_datetime(frame["bucket"])
    step = {"month": pd.offsets.MonthBegin(1), "week": pd.Timedelta(days=7), "day": pd.Timedelta(days=1),
            "hour": pd.Timedelta(hours=1)}.get(freq) or pd.Timedelta(freq)
    return frame.assign(bucket=start, bucket_end=start + step)


def _bars(frame: pd.DataFrame, freq: str, title: str, y: str, y_title: str, color: str, color_title: str,
          tooltip: list) -> None:
    _chart(alt.Chart(_with_end(frame, freq), title=title).mark_bar()
           .encode(x=_time_x("bucket", freq), x2="bucket_end:T", y=alt.Y(f"{y}:Q", title=y_title),
                   color=alt.Color(f"{color}:N", title=color_title), tooltip=["bucket:T", *tooltip]))


def _safe(what: str, fn: Callable[[], Any], default: Any) -> Any:
    """Run a core read that may raise (runs, status counts); show one clear message instead."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the console shows what it can
        st.error(f"{what} cannot be read: {type(exc).__name__}: {str(exc)[:200]}")
        return default


# ---------------------------------------------------------------------------------------- runs (shared)


def _runs(rt: Runtime) -> list[RunView]:
    if not rt.db.ok:
        return []
    return _safe("Runs", lambda: list_runs(rt.db, limit=50), [])


def selected_run(rt: Runtime, key: str, runs: list[RunView] | None = None) -> RunView | None:
    """The run chosen on any tab, else the newest one."""
    runs = _runs(rt) if runs is None else runs
    chosen = st.session_state.get(f"{key}_selected_run")
    return next((r for r in runs if r.id == chosen), runs[0] if runs else None)


def run_choice(rt: Runtime, key: str, widget_key: str, label: str = "Run") -> RunView | None:
    """A run picker that shares its choice with the other tabs' pickers. None when there are no runs."""
    runs = _runs(rt)
    if not runs:
        return None
    ids = [r.id for r in runs]
    current = selected_run(rt, key, runs)
    labels = {r.id: f"{r.id} · {r.status} · {fmt_time(r.created_at)} · {r.topic[:40]}" for r in runs}
    chosen = st.selectbox(label, options=ids, index=ids.index(current.id) if current else 0,
                          format_func=labels.get, key=widget_key)
    st.session_state[f"{key}_selected_run"] = chosen
    return next((r for r in runs if r.id == chosen), None)


def _open_trace(key: str, trace_id: str) -> None:
    """Button callback (runs before the script): open the Traces tab on this trace."""
    st.session_state[f"{key}_tab"] = TAB_TRACES
    st.session_state[f"{key}_trace"] = trace_id


# ---------------------------------------------------------------------------------------- 1 overview


def show_overview(rt: Runtime, key: str) -> None:
    _overview_live(key)
    st.subheader("Events")
    live_event_feed(f"{key}_events")


@st.fragment(run_every="5s")
def _overview_live(key: str) -> None:
    render_overview(get_runtime(), key)


def render_overview(rt: Runtime, key: str) -> None:
    """Supervisor, health checks with their history, firing alerts, telemetry writer, resources."""
    sup = rt.supervisor
    c1, c2, c3, c4 = st.columns(4)
    if sup is not None:
        status = sup.status()
        c1.metric("Supervisor", "running" if status.running else "stopped")
        c2.metric("Jobs running here", f"{status.active_jobs}/{status.max_workers}")
        counts = _safe("Run counts", lambda: status_counts(rt.db), {}) if rt.db.ok else {}
        c3.metric("Runs queued", counts.get("queued", 0))
        c4.metric("Runs running", counts.get("running", 0))
        now = utcnow().timestamp()
        st.caption(f"Worker `{status.worker_id}`" + (" · stopping" if status.stopping else ""))
        loops = [{"loop": name, "last ok (UTC)": _epoch_text(ls.last_ok),
                  "seconds since": round(now - ls.last_ok, 1) if ls.last_ok else None, "errors": ls.errors,
                  "last error": ls.last_error} for name, ls in status.loops.items()]
        if loops:
            _table(pd.DataFrame(loops))
    else:
        c1.metric("Supervisor", "not running")
        st.warning("The supervisor is not running, so no background work can happen. See the message above.")

    _health(rt, key)
    _firing(rt)
    _telemetry_stats(rt)
    _gauges(rt)


def _health(rt: Runtime, key: str) -> None:
    st.subheader("Health checks")
    monitor = rt.health
    checks = (monitor.latest() if monitor is not None else []) or run_checks(rt.settings, rt.db)
    _table(pd.DataFrame([{"check": r.name, "status": r.status, "detail": r.detail, "essential": r.essential,
                          "ms": r.ms} for r in checks]))
    if monitor is None:
        st.caption("Health checks are not run in the background in this process.")
        return
    # The supervisor runs the checks on an interval (SHOAL_HEALTH_SECONDS) and keeps a bounded
    # history for the whole process; one row per round here.
    rounds: dict[float, dict] = {}
    for ts, r in monitor.history():
        rounds.setdefault(ts, {"time (UTC)": fmt_time(from_epoch(ts))})[r.name] = r.status  # one ts per round
    history = list(rounds.values())
    changes = sum(1 for a, b in zip(history, history[1:])
                  if {k: v for k, v in a.items() if k != "time (UTC)"} != {k: v for k, v in b.items()
                                                                          if k != "time (UTC)"})
    with st.expander(f"Health history: {len(history)} round(s), {changes} change(s)"):
        _table(pd.DataFrame(history[-HEALTH_SHOWN:][::-1]))
        st.caption(f"Checks run every {rt.settings['SHOAL_HEALTH_SECONDS']:g} s in the background; the newest "
                   f"{HEALTH_SHOWN} rounds are shown.")


def _firing(rt: Runtime) -> None:
    st.subheader("Alerts")
    if rt.alerts is None:
        st.caption("Alerts are not evaluated in this process.")
        return
    firing = rt.alerts.firing()
    evaluated = _epoch_text(rt.alerts.last_evaluated)
    if not firing:
        st.caption(f"No alert is firing. Last evaluated {evaluated} UTC.")
        return
    now = utcnow().timestamp()
    st.markdown(f":red-badge[{len(firing)} firing] · last evaluated {evaluated} UTC")
    _table(pd.DataFrame([{"alert": a.rule, "severity": a.severity, "since (UTC)": _epoch_text(a.since),
                          "for": fmt_duration(max(0.0, now - a.since)) if a.since else "—",
                          "value": str(a.value), "condition": f"{a.metric} {a.op} {a.threshold:g}",
                          "description": a.description} for a in firing]))


def _telemetry_stats(rt: Runtime) -> None:
    st.subheader("Telemetry writer")
    if rt.telemetry is None:
        st.caption("Telemetry is not written in this process (no database), so nothing is recorded.")
        return
    s = rt.telemetry.stats()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Telemetry written", f"{s.written:,}")
    c2.metric("Telemetry dropped", f"{s.dropped:,}")
    c3.metric("Telemetry buffered", f"{s.buffered:,}", help=f"at most {s.max_buffer:,} wait")
    c4.metric("Telemetry recorded", f"{s.recorded:,}")
    if s.dropped:
        st.warning(f"**{s.dropped:,} telemetry events were dropped** and will never be written "
                   f"(buffer full: {s.dropped_overflow:,}, refused by the database: {s.dropped_rejected:,}, "
                   f"after shutdown: {s.dropped_closed:,})." + (f" Last error: {s.last_error}" if s.last_error else ""))
    st.caption(f"{s.batches:,} batches · {s.failures:,} failed attempts · last write {_epoch_text(s.last_write)} UTC"
               + ("" if rt.telemetry.alive else " · the writer thread is not running"))


def _gauges(rt: Runtime) -> None:
    st.subheader("Resources")
    latest = rt.resources.latest() if rt.resources is not None else None
    if not latest:
        st.caption("No resource sample yet.")
        return
    cols = st.columns(3)
    for col, (label, field) in zip(cols, (("CPU", "cpu_percent"), ("Memory", "memory_percent"),
                                          ("Disk", "disk_percent"))):
        value = latest.get(field)
        if value is None:
            col.caption(f"{label}: cannot be read here")
        else:
            col.progress(min(1.0, max(0.0, float(value) / 100)), text=f"{label} {value:.0f} %")
    rss = latest.get("process_rss_bytes")
    threads = latest.get("process_threads")
    st.caption(" · ".join([
        f"This process: {rss / 2**20:,.0f} MB resident" if rss is not None else "This process: RSS unknown",
        f"{threads} threads" if threads is not None else "threads unknown",
        f"sampled {_epoch_text(latest.get('ts'))} UTC"]))


# ---------------------------------------------------------------------------------------- 2 runs & jobs


def show_runs(rt: Runtime, key: str) -> None:
    sup = rt.supervisor
    run = run_choice(rt, key, f"{key}_run")
    if run is None:
        st.caption("No runs yet." if rt.db.ok else "No runs to show: the database is unavailable.")
    else:
        st.markdown(f"{badge(run.status)} run `{run.id}` · {run.kind} · trace `{run.trace_id}` · "
                    f"created {fmt_time(run.created_at)} · duration {fmt_duration(run.duration_s)}"
                    + (f" · {run.error}" if run.error else ""))
        jobs_table(rt, run.id)
        b1, b2, b3 = st.columns(3)
        b3.button("Show everything for this trace", key=f"{key}_open_trace", on_click=_open_trace,
                  args=(key, run.trace_id), disabled=not run.trace_id)
        if sup is not None and admin_unlocked(rt, "monitor"):
            if b1.button("Cancel run", disabled=run.status not in ("queued", "running", "cancelling")):
                final = sup.cancel_run(run.id)
                st.toast(f"Run {run.id}: {final}")
                st.rerun()
            if b2.button("Resume run", disabled=run.status not in ("interrupted", "failed", "cancelled")):
                resumed = sup.resume_run(run.id)
                st.toast(f"Resumed {len(resumed)} job(s)")
                st.rerun()
        show_timeline(rt, run)

    with st.expander("Supervisor self-test"):
        st.caption("Runs probe jobs through the real queue, leases, heartbeats and checkpoints.")
        p1, p2, p3 = st.columns(3)
        n_jobs = p1.number_input("Jobs", 1, 20, 3, key=f"{key}_probe_jobs")
        steps = p2.number_input("Steps", 1, 200, 10, key=f"{key}_probe_steps")
        step_s = p3.number_input("Seconds per step", 0.0, 10.0, 0.2, key=f"{key}_probe_step_s")
        if st.button("Start self-test", disabled=sup is None):
            if admin_unlocked(rt, "probe"):
                run_id = sup.submit_run(probe_jobs(int(n_jobs), int(steps), float(step_s)), kind="probe",
                                        topic=f"self-test: {n_jobs} jobs × {steps} steps")
                st.success(f"Self-test run `{run_id}` queued.")


def show_timeline(rt: Runtime, run: RunView) -> None:
    """The run's Gantt: a bar per job attempt and per node, one lane per engine and paragraph."""
    st.subheader("Timeline")
    frame = run_timeline(rt.db, run.id)
    if _frame_error(frame):
        return
    skipped = frame.attrs.get("skipped", 0)
    note = f" {skipped} node event(s) without a duration were skipped." if skipped else ""
    if frame.empty:
        st.caption("No timeline for this run yet: it has no job or node events." + note)
        return
    summary = timeline_summary(frame)
    bars = frame if len(frame) <= MAX_BARS else frame.nlargest(MAX_BARS, "ms").sort_values("start")
    # Lanes grouped by engine (in order of first start), the job's bar above its paragraphs.
    first = {e: i for i, e in enumerate(dict.fromkeys(frame.sort_values("start")["engine"]))}
    order = frame.drop_duplicates("lane").assign(
        _e=lambda f: f["engine"].map(first), _j=lambda f: (f["kind"] != "job").astype(int),
        _p=lambda f: pd.to_numeric(f["paragraph"], errors="coerce").fillna(-1))
    lanes = list(order.sort_values(["_e", "_j", "_p"])["lane"])
    data = bars[["lane", "engine", "kind", "node", "paragraph", "status", "start", "end", "ms", "trace_id"]].copy()
    data["paragraph"] = data["paragraph"].astype("object").where(data["paragraph"].notna(), None).astype(str)
    chart = (alt.Chart(data, title=f"Timeline of run {run.id}").mark_bar()
             .encode(x=_time_x("start", "time (UTC)", "%H:%M:%S"), x2="end:T",
                     y=alt.Y("lane:N", sort=lanes, title=None, axis=alt.Axis(labelOverlap=False)),
                     color=alt.Color("engine:N", title="engine"),
                     tooltip=["lane", "kind", "node", "status", alt.Tooltip("ms:Q", format=",.0f"),
                              alt.Tooltip("start:T", format="%H:%M:%S.%L"), alt.Tooltip("end:T", format="%H:%M:%S.%L"),
                              "trace_id"])
             )
    _chart(chart, height=max(160, 22 * len(lanes) + 80))
    shown = "" if len(bars) == len(frame) else f" The {MAX_BARS:,} longest of {len(frame):,} bars are drawn."
    st.caption(f"{int((frame['kind'] == 'job').sum())} job bar(s), {int((frame['kind'] == 'node').sum())} node bar(s)."
               + shown + note)
    _table(summary, column_config={"node_ms": st.column_config.NumberColumn("node time (ms)", format="%.0f"),
                                   "wall_ms": st.column_config.NumberColumn("wall time (ms)", format="%.0f"),
                                   "max_parallel": st.column_config.NumberColumn("max parallel nodes")})


# ---------------------------------------------------------------------------------------- 3 usage & cost


def _llm_frame(rt: Runtime, window: str) -> pd.DataFrame:
    return llm_calls_frame(rt.db, since=_since(window), limit=MAX_CALLS)


def _calls_caption(frame: pd.DataFrame, window: str) -> None:
    more = f" (the newest {MAX_CALLS:,}; narrow the window to see all)" if len(frame) >= MAX_CALLS else ""
    st.caption(f"{len(frame):,} LLM call(s) in the window “{window}”{more}.")


def show_usage(rt: Runtime, key: str) -> None:
    if _no_database(rt, "LLM usage"):
        return
    c1, c2 = st.columns(2)
    period = c1.radio("Per", ("day", "week", "month"), horizontal=True, key=f"{key}_usage_period")
    window = c2.radio("Window", tuple(WINDOWS), index=3, horizontal=True, key=f"{key}_usage_window")
    frame = _llm_frame(rt, window)
    if not _frame_error(frame):
        if frame.empty:
            st.info("No LLM calls recorded in this window. Offline runs make none; runs with an LLM configured "
                    "(Settings) record one row per call.")
        else:
            _calls_caption(frame, window)
            totals = usage_table(frame, rt.prices, period="all", by=()).iloc[0]
            m1, m2, m3, m4, m5 = st.columns([1, 1, 1, 1, 2])
            m1.metric("LLM calls", f"{int(totals['calls']):,}")
            m2.metric("Input tokens", f"{int(totals['input_tokens']):,}")
            m3.metric("Output tokens", f"{int(totals['output_tokens']):,}")
            m4.metric("Failed calls", f"{int(totals['errors']):,}")
            m5.metric("Cost", totals["cost_label"])
            table = usage_table(frame, rt.prices, period=period)
            table = table.drop(columns=["cost_usd"]).rename(columns={"cost_label": "cost"})
            _table(table, column_config={"period": st.column_config.DatetimeColumn(period, format="YYYY-MM-DD")})
            st.caption("Cost per 1M tokens from the price table below; a model missing from it is “unpriced”, "
                       "never $0.")
            over_time = error_timeline(frame, period, by=("role",))
            _bars(over_time, period, "LLM calls over time", "calls", "calls", "role", "agent",
                  ["role", "calls", "errors"])

    st.subheader("Per run")
    run = run_choice(rt, key, f"{key}_usage_run")
    if run is None:
        st.caption("No runs yet.")
    else:
        u = run_usage(rt.db, run.id, rt.prices)
        if u["error"]:
            st.error(u["error"])
        else:
            r1, r2, r3, r4 = st.columns([1, 1, 1, 2])
            r1.metric("Run LLM calls", f"{u['calls']:,}")
            r2.metric("Run tokens", f"{u['total_tokens']:,}")
            r3.metric("Run failed calls", f"{u['errors']:,}")
            r4.metric("Run cost", u["cost_label"])
            if u["note"]:
                st.caption(u["note"])

    st.subheader("Price table")
    if rt.prices is None:
        st.caption("No price table is loaded in this process.")
        return
    for problem in rt.prices.problems:
        st.warning(f"Price table: {problem}")
    _table(pd.DataFrame(rt.prices.rows(), columns=["model", "input_per_m", "output_per_m", "source"]),
           column_config={"input_per_m": st.column_config.NumberColumn("input $/1M tokens"),
                          "output_per_m": st.column_config.NumberColumn("output $/1M tokens")})
    configured = rt.settings.get("SHOAL_PRICE_TABLE")
    st.caption("Prices from " + (f"`{configured}`" if configured else
                                 f"the defaults and `{rt.settings.data_dir / 'prices.json'}` if present")
               + " (SHOAL_PRICE_TABLE); USD per 1M tokens.")


# ---------------------------------------------------------------------------------------- 4 latency & errors


def show_latency(rt: Runtime, key: str) -> None:
    if _no_database(rt, "Latency and errors"):
        return
    c1, c2 = st.columns(2)
    window = c1.radio("Window", tuple(WINDOWS), index=1, horizontal=True, key=f"{key}_latency_window")
    freq = c2.radio("Bucket", ("5min", "hour", "day"), index=1, horizontal=True, key=f"{key}_latency_bucket")
    frame = _llm_frame(rt, window)
    if _frame_error(frame):
        return
    st.subheader("Latency per agent and model")
    if frame.empty:
        st.info("No LLM calls recorded in this window, so there is no latency to show.")
    else:
        _calls_caption(frame, window)
        ms = {c: st.column_config.NumberColumn(c.replace("_ms", " (ms)"), format="%.1f")
              for c in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")}
        _table(latency_table(frame), column_config=ms)
        st.caption("Percentiles include failed calls (a timeout is time the operator waits). "
                   "TTFT: time to first token, over calls that streamed.")

        st.subheader("Errors over time")
        timeline = error_timeline(frame, freq)
        _chart(alt.Chart(timeline, title="Failed calls (%)").mark_line(point=True)
               .encode(x=_time_x("bucket", freq), y=alt.Y("error_pct:Q", title="% failed"),
                       tooltip=["bucket:T", "calls", "errors", alt.Tooltip("error_pct:Q", format=".1f"), "retries"]))
        kinds = errors_by_kind(frame, freq)
        if kinds.empty:
            st.caption("No failed LLM calls in this window.")
        else:
            _bars(kinds, freq, "Failed calls by kind", "errors", "failed calls", "error_kind", "kind",
                  ["error_kind", "errors", "retries"])
            _table(kinds.groupby("error_kind", as_index=False)[["errors", "retries"]].sum()
                   .sort_values("errors", ascending=False))

    st.subheader("Retries by kind")
    retries = retry_events_frame(rt.db, since=_since(window))
    if _frame_error(retries):
        return
    by_kind = retries_by_kind(retries, freq)
    if by_kind.empty:
        st.caption("No retries in this window.")
        return
    _bars(by_kind, freq, "Retries by kind", "retries", "retries", "kind", "kind", ["kind", "retries", "gave_up"])
    _table(by_kind.groupby("kind", as_index=False)[["retries", "gave_up"]].sum()
           .sort_values("retries", ascending=False))


# ---------------------------------------------------------------------------------------- 5 telemetry


def show_telemetry(rt: Runtime, key: str) -> None:
    if rt.telemetry is not None:
        s = rt.telemetry.stats()
        if s.dropped:
            st.warning(f"**{s.dropped:,} telemetry events were dropped** by the writer and are missing below.")
        st.caption(f"Writer: {s.written:,} written · {s.dropped:,} dropped · {s.buffered:,} buffered.")
    if _no_database(rt, "The telemetry explorer"):
        return
    types = telemetry_types(rt.db)
    c1, c2, c3 = st.columns(3)
    chosen = c1.multiselect("Types", types, key=f"{key}_tel_types", placeholder="all types")
    run_id = c2.text_input("Run id", key=f"{key}_tel_run").strip()
    trace = c3.text_input("Trace id (prefix)", key=f"{key}_tel_trace").strip()
    d1, d2 = st.columns([3, 1])
    window = d1.radio("Time range", tuple(WINDOWS), index=1, horizontal=True, key=f"{key}_tel_window")
    limit = int(d2.number_input("Newest", 10, 5000, 500, step=100, key=f"{key}_tel_limit"))
    frame = query_telemetry(rt.db, types=chosen or None, run_id=run_id or None, trace_id=trace or None,
                            since=_since(window), limit=limit)
    if _frame_error(frame):
        return
    if frame.empty:
        st.caption("No telemetry events match these filters." if types else "No telemetry events recorded yet.")
        return
    st.caption(f"{len(frame):,} event(s), newest first" + (" (limit reached)" if len(frame) >= limit else "") + ".")
    _table(_payload_as_text(frame))


# ---------------------------------------------------------------------------------------- 6 traces

SECTIONS = (("runs", "Runs"), ("jobs", "Jobs"), ("events", "Events"), ("llm_calls", "LLM calls"),
            ("telemetry", "Telemetry"), ("forum", "Forum messages"), ("reports", "Reports"), ("logs", "Log lines"))


def show_traces(rt: Runtime, key: str) -> None:
    k = f"{key}_trace"
    run = selected_run(rt, key)
    run_id = run.id if run else None
    if k not in st.session_state:  # opened afresh: the chosen run's trace, unless the operator typed one for it
        last = st.session_state.get(f"{key}_trace_last")
        fresh = last is None or st.session_state.get(f"{key}_trace_run") != run_id
        st.session_state[k] = (run.trace_id if run else "") if fresh else last
    st.session_state[f"{key}_trace_run"] = run_id
    trace = st.text_input("Trace id (a run's trace shows its jobs and nodes too)", key=k).strip()
    st.session_state[f"{key}_trace_last"] = trace
    if not trace:
        st.caption("Give a trace id: a run's is shown on Runs & jobs, every log line and event carries one.")
        return
    bundle = trace_bundle(rt.db if rt.db.ok else None, trace, rt.settings.log_dir)
    for problem in bundle["problems"]:
        st.warning(f"Trace: {problem}")
    counts, truncated = bundle["counts"], bundle["truncated"]
    if counts:
        total = sum(counts.values())
        st.markdown(f"**{total:,}** record(s) for trace `{trace}`: " + " · ".join(
            f"{label} {counts.get(name, 0):,}" + ("+" if truncated.get(name) else "") for name, label in SECTIONS))
    for name, label in SECTIONS:
        frame = bundle[name]
        more = " (truncated: the newest are kept)" if truncated.get(name) else ""
        st.markdown(f"**{label}** · {len(frame):,}{more}")
        if frame.empty:
            st.caption(f"No {label.lower()} for this trace.")
        else:
            _table(_payload_as_text(frame))


# ---------------------------------------------------------------------------------------- 7 resources


def show_resources(rt: Runtime, key: str) -> None:
    _resources_live(key)


@st.fragment(run_every="10s")
def _resources_live(key: str) -> None:
    render_resources(get_runtime(), key)


def render_resources(rt: Runtime, key: str) -> None:
    sampler = rt.resources
    if sampler is None:
        st.caption("Resources are not sampled in this process.")
        return
    frame = sampler.frame()
    if frame.empty:
        st.caption(f"No samples yet: one is taken every {sampler.interval:g} s.")
        return
    st.caption(f"{len(frame):,} sample(s), one every {sampler.interval:g} s, the last {sampler.history:,} kept"
               + (f" · sampler error: {sampler.last_error}" if sampler.last_error else "")
               + ("" if sampler.running else " · the sampler is not running"))
    frame = frame.assign(process_rss_mb=frame["process_rss_bytes"] / 2**20)
    charts = (("System use (%)", ["cpu_percent", "memory_percent", "disk_percent"], "%"),
              ("Network (bytes/s)", ["net_sent_bps", "net_recv_bps"], "bytes/s"),
              ("This process: resident memory (MB)", ["process_rss_mb"], "MB"),
              ("This process: threads", ["process_threads"], "threads"))
    for title, columns, unit in charts:
        long = frame.melt(id_vars=["time"], value_vars=columns, var_name="series", value_name="value").dropna()
        if long.empty:
            st.caption(f"{title}: cannot be read here.")
            continue
        _chart(alt.Chart(long, title=title).mark_line()
               .encode(x=_time_x("time", "time (UTC)"), y=alt.Y("value:Q", title=unit),
                       color=alt.Color("series:N", title=None), tooltip=["time:T", "series", "value"]),
               height=220)


# ---------------------------------------------------------------------------------------- 8 logs


def logview_for(rt: Runtime, key: str) -> LogView:
    """The session's LogView (byte offsets per file), rebuilt when the log folder changes."""
    view = st.session_state.get(f"{key}_logview")
    if not isinstance(view, LogView) or view.log_dir != Path(rt.settings.log_dir):
        view = LogView(rt.settings.log_dir)
        st.session_state[f"{key}_logview"] = view
    return view


def show_logs(rt: Runtime, key: str) -> None:
    c1, c2 = st.columns(2)
    engine = c1.radio("Engine", ENGINE_CHOICES, horizontal=True, key=f"{key}_log_engine")
    level = c2.select_slider("Minimum level", LEVEL_CHOICES, value="ALL", key=f"{key}_log_level")
    c3, c4 = st.columns(2)
    trace = c3.text_input("Trace id (prefix)", key=f"{key}_log_trace").strip()
    text = c4.text_input("Text", key=f"{key}_log_text").strip()
    _logs_live(key, None if engine == "all" else engine, None if level == "ALL" else level, trace or None,
               text or None)


@st.fragment(run_every="3s")
def _logs_live(key: str, engine: str | None, min_level: str | None, trace: str | None, text: str | None) -> None:
    render_logs(get_runtime(), key, engine=engine, min_level=min_level, trace=trace, text=text)


def render_logs(rt: Runtime, key: str, *, engine: str | None = None, min_level: str | None = None,
                trace: str | None = None, text: str | None = None, limit: int = LOG_LINES) -> None:
    """Body of the live log panel: reads only what the files gained since the last poll."""
    view = logview_for(rt, key)
    view.poll()
    for problem in view.problems:
        st.warning(f"Log viewer: {problem}")
    frame = view.frame(engine=engine, min_level=min_level, trace=trace, text=text, limit=limit)
    files = view.available()
    if frame.empty:
        st.caption(("No log lines match these filters." if files else f"No log files in {view.log_dir} yet.")
                   + f" Tailing {', '.join(files) or 'nothing'}.")
        return
    raw = int((~frame["parsed"].astype(bool)).sum())
    shown = frame.iloc[::-1][["time", "level", "sink", "trace", "location", "message", "parsed", "file"]]
    _table(shown.rename(columns={"sink": "engine"}),
           column_config={"parsed": st.column_config.CheckboxColumn("parsed", help="unparsed lines are shown raw")})
    st.caption(f"{len(frame):,} line(s), newest first (at most {limit:,})"
               + (f" · {raw:,} line(s) did not parse and are shown raw" if raw else "")
               + f" · tailing {', '.join(files)} · times as written (local)")


# ---------------------------------------------------------------------------------------- 9 alerts


def rules_path(rt: Runtime) -> Path:
    """Where edited rules are saved: SHOAL_ALERT_RULES, or alert_rules.json in the data folder."""
    return rt.settings.path("SHOAL_ALERT_RULES") if rt.settings.get("SHOAL_ALERT_RULES") \
        else rt.settings.data_dir / "alert_rules.json"


def _rule_records(edited: pd.DataFrame) -> list[dict]:
    """The editor's rows as plain dicts for core.console.alerts.rules_from_data (which validates them)."""
    out = []
    for row in edited.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
                continue
            if hasattr(v, "item"):  # numpy scalars -> Python
                v = v.item()
            clean[k] = v.strip() if isinstance(v, str) else v
        if not any(v not in ("", None) for v in clean.values()):
            continue  # a blank row added and left empty
        out.append(clean)
    return out


def show_alerts(rt: Runtime, key: str) -> None:
    if rt.alerts is None:
        st.info("Alerts are not evaluated in this process.")
        return
    engine = rt.alerts
    firing = engine.firing()
    st.subheader("Firing")
    if firing:
        now = utcnow().timestamp()
        _table(pd.DataFrame([{"alert": a.rule, "severity": a.severity, "since (UTC)": _epoch_text(a.since),
                              "for": fmt_duration(max(0.0, now - a.since)) if a.since else "—", "value": str(a.value),
                              "condition": f"{a.metric} {a.op} {a.threshold:g}", "description": a.description}
                             for a in firing]))
    else:
        st.caption("No alert is firing.")
    pending = engine.pending()
    if pending:
        st.caption("Holding, not yet for long enough: " + ", ".join(
            f"{name} since {_epoch_text(since)} UTC" for name, since in pending.items()))
    e1, e2 = st.columns([1, 3])
    if e1.button("Evaluate now", key=f"{key}_alerts_eval"):
        engine.tick(rt.db if rt.db.ok else None, resources=rt.resources, telemetry=rt.telemetry)
        st.rerun()
    e2.caption(f"Evaluated every {rt.settings.get('SHOAL_ALERT_SECONDS', 15):g} s by the supervisor; "
               f"last {_epoch_text(engine.last_evaluated)} UTC.")
    if engine.last_metrics:
        with st.expander("Current metrics"):
            metrics = {k: v for k, v in engine.last_metrics.items() if k != "problems"}
            _table(pd.DataFrame([{"metric": k, "value": str(v)} for k, v in sorted(metrics.items())]))
            for problem in engine.last_metrics.get("problems") or []:
                st.caption(f"could not read: {problem}")

    st.subheader("History")
    history = engine.history()
    if history:
        _table(pd.DataFrame([{"time (UTC)": _epoch_text(c.at), "alert": c.rule, "state": c.state,
                              "severity": c.severity, "value": str(c.value), "message": c.message}
                             for c in reversed(history)]))
    else:
        st.caption("No alert has fired or cleared since this process started.")

    st.subheader("Rules")
    path = rules_path(rt)
    unlocked = admin_unlocked(rt, f"{key}_alerts")
    version = st.session_state.get(f"{key}_rules_version", 0)
    rules = pd.DataFrame([r.as_dict() for r in engine.rules], columns=RULE_COLUMNS)
    edited = st.data_editor(
        rules, key=f"{key}_rules_{version}", num_rows="dynamic", hide_index=True, disabled=not unlocked,
        column_config={
            "op": st.column_config.SelectboxColumn("op", options=list(OPS), required=True),
            "severity": st.column_config.SelectboxColumn("severity", options=list(SEVERITIES), required=True),
            "threshold": st.column_config.NumberColumn("threshold", required=True),
            "for_seconds": st.column_config.NumberColumn("for (s)", min_value=0),
            "enabled": st.column_config.CheckboxColumn("enabled"),
        })
    st.caption("Metrics: " + ", ".join(f"`{m}`" for m in KNOWN_METRICS) + f". Saved to `{path}`.")
    if st.button("Save rules", key=f"{key}_rules_save", disabled=not unlocked):
        new_rules, problems = rules_from_data(_rule_records(edited))
        if problems:
            st.error("Not saved: " + "; ".join(problems))
            return
        try:
            save_rules(path, new_rules)
        except OSError as exc:
            st.error(f"Not saved: {path} cannot be written ({exc.strerror or exc}).")
            return
        cleared = engine.set_rules(new_rules)
        st.session_state[f"{key}_rules_version"] = version + 1  # the next run edits the saved rules afresh
        st.success(f"Saved {len(new_rules)} rule(s) to {path}; they apply now"
                   + (f" ({len(cleared)} firing alert(s) cleared)." if cleared else "."))


# ---------------------------------------------------------------------------------------- the page

TABS: dict[str, Callable[[Runtime, str], None]] = {
    TAB_OVERVIEW: show_overview, TAB_RUNS: show_runs, TAB_USAGE: show_usage, TAB_LATENCY: show_latency,
    TAB_TELEMETRY: show_telemetry, TAB_TRACES: show_traces, TAB_RESOURCES: show_resources, TAB_LOGS: show_logs,
    TAB_ALERTS: show_alerts,
}
