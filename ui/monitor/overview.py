"""Monitor tab 1, Overview: supervisor, LLM budgets and calls in flight, health checks with their history,
firing alerts, the telemetry writer and resource gauges; a live fragment every 5 s, and the event feed."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.console.health import run_checks
from core.infra.models import from_epoch, utcnow
from core.runtime import Runtime
from core.work.runs import status_counts

from ui.monitor.alerts import firing_frame
from ui.monitor.budgets import show_budgets
from ui.monitor.common import _epoch_text, _safe, _table
from ui.runtime import get_runtime
from ui.widgets import fmt_time, live_event_feed

HEALTH_SHOWN = 30


# ---------------------------------------------------------------------------------------- 1 overview


def show_overview(rt: Runtime, key: str) -> None:
    _overview_live(key)
    st.subheader("Events")
    live_event_feed(f"{key}_events")


@st.fragment(run_every=5)
def _overview_live(key: str) -> None:
    render_overview(get_runtime(), key)


def render_overview(rt: Runtime, key: str) -> None:
    """Supervisor, LLM budgets, health checks with their history, firing alerts, telemetry writer, resources."""
    sup = rt.supervisor
    c1, c2, c3, c4 = st.columns(4)
    if sup is not None:
        status = sup.status()
        c1.metric("Supervisor", "running" if status.running else "stopped")
        c2.metric("Jobs running here", f"{status.active_jobs}/{status.max_workers}")
        counts = _safe("Run counts", lambda: status_counts(rt.db, ("queued", "running")), {}) if rt.db.ok else {}
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

    show_budgets(rt)
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
    st.markdown(f":red-badge[{len(firing)} firing] · last evaluated {evaluated} UTC")
    _table(firing_frame(firing))


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
