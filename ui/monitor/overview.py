"""Monitor tab 1, Overview: supervisor, LLM budgets and calls in flight, health checks with their history,
firing alerts, the telemetry writer and resource gauges; a live fragment every 5 s, and the event feed."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.console.health import run_checks
from core.i18n import has
from core.infra.models import from_epoch, utcnow
from core.runtime import Runtime
from core.work.runs import status_counts

from ui.monitor.alerts import firing_frame
from ui.monitor.budgets import show_budgets
from ui.monitor.common import _epoch_text, _safe, _table
from ui.i18n import show, status_label, t
from ui.runtime import get_runtime
from ui.widgets import fmt_time, live_event_feed

HEALTH_SHOWN = 30


# ---------------------------------------------------------------------------------------- 1 overview


def show_overview(rt: Runtime, key: str) -> None:
    _overview_live(key)
    st.subheader(t("monitor.events"))
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
        c1.metric(t("monitor.supervisor"), t("monitor.sup_running") if status.running else t("monitor.sup_stopped"))
        c2.metric(t("monitor.jobs_here"), f"{status.active_jobs}/{status.max_workers}")
        counts = _safe(t("monitor.what_run_counts"), lambda: status_counts(rt.db, ("queued", "running")),
                       {}) if rt.db.ok else {}
        c3.metric(t("monitor.runs_queued"), counts.get("queued", 0))
        c4.metric(t("monitor.runs_running"), counts.get("running", 0))
        now = utcnow().timestamp()
        st.caption(t("monitor.worker", worker=status.worker_id)
                   + (" · " + t("monitor.stopping") if status.stopping else ""))
        loops = [{"loop": name, "last_ok": _epoch_text(ls.last_ok),
                  "seconds_since": round(now - ls.last_ok, 1) if ls.last_ok else None, "errors": ls.errors,
                  "last_error": ls.last_error} for name, ls in status.loops.items()]
        if loops:
            _table(pd.DataFrame(loops))
    else:
        c1.metric(t("monitor.supervisor"), t("monitor.sup_not_running"))
        st.warning(t("monitor.sup_not_running_warning"))

    show_budgets(rt)
    _health(rt, key)
    _firing(rt)
    _telemetry_stats(rt)
    _gauges(rt)


def check_name(name: str) -> str:
    """A health check's name in words (`database`, `llm endpoint`): the catalogue's health.name_*."""
    key = "health.name_" + name.replace(" ", "_")
    return t(key) if has(key) else name


def _health(rt: Runtime, key: str) -> None:
    st.subheader(t("monitor.health_checks"))
    monitor = rt.health
    checks = (monitor.latest() if monitor is not None else []) or run_checks(rt.settings, rt.db)
    _table(pd.DataFrame([{"check": check_name(r.name), "status": status_label(r.status), "detail": show(r.text),
                          "essential": r.essential, "ms": r.ms} for r in checks]))
    if monitor is None:
        st.caption(t("monitor.health_not_background"))
        return
    # The supervisor runs the checks on an interval (SHOAL_HEALTH_SECONDS) and keeps a bounded
    # history for the whole process; one row per round here.
    rounds: dict[float, dict] = {}
    for ts, r in monitor.history():
        row = rounds.setdefault(ts, {"time": fmt_time(from_epoch(ts))})  # one ts per round
        row[check_name(r.name)] = status_label(r.status)
    history = list(rounds.values())
    changes = sum(1 for a, b in zip(history, history[1:])
                  if {k: v for k, v in a.items() if k != "time"} != {k: v for k, v in b.items() if k != "time"})
    with st.expander(t("monitor.health_history", rounds=len(history), changes=changes)):
        _table(pd.DataFrame(history[-HEALTH_SHOWN:][::-1]))
        st.caption(t("monitor.health_every", seconds=f"{rt.settings['SHOAL_HEALTH_SECONDS']:g}", n=HEALTH_SHOWN))


def _firing(rt: Runtime) -> None:
    st.subheader(t("monitor.alerts"))
    if rt.alerts is None:
        st.caption(t("monitor.alerts_off"))
        return
    firing = rt.alerts.firing()
    evaluated = _epoch_text(rt.alerts.last_evaluated)
    if not firing:
        st.caption(t("monitor.no_alert_firing") + " " + t("monitor.last_evaluated", last=evaluated))
        return
    st.markdown(f":red-badge[{t('monitor.n_firing', n=len(firing))}] · " + t("monitor.last_evaluated", last=evaluated))
    _table(firing_frame(firing))


def _telemetry_stats(rt: Runtime) -> None:
    st.subheader(t("monitor.telemetry_writer"))
    if rt.telemetry is None:
        st.caption(t("monitor.telemetry_off"))
        return
    s = rt.telemetry.stats()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("monitor.tel_written"), f"{s.written:,}")
    c2.metric(t("monitor.tel_dropped"), f"{s.dropped:,}")
    c3.metric(t("monitor.tel_buffered"), f"{s.buffered:,}", help=t("monitor.tel_buffer_max", n=f"{s.max_buffer:,}"))
    c4.metric(t("monitor.tel_recorded"), f"{s.recorded:,}")
    if s.dropped:
        st.warning(t("monitor.tel_dropped_warning", n=f"{s.dropped:,}", overflow=f"{s.dropped_overflow:,}",
                     rejected=f"{s.dropped_rejected:,}", closed=f"{s.dropped_closed:,}")
                   + (" " + t("monitor.last_error", error=s.last_error) if s.last_error else ""))
    st.caption(t("monitor.tel_batches", batches=f"{s.batches:,}", failures=f"{s.failures:,}",
                 last=_epoch_text(s.last_write))
               + ("" if rt.telemetry.alive else " · " + t("monitor.tel_thread_down")))


def _gauges(rt: Runtime) -> None:
    st.subheader(t("monitor.resources"))
    latest = rt.resources.latest() if rt.resources is not None else None
    if not latest:
        st.caption(t("monitor.no_sample"))
        return
    cols = st.columns(3)
    for col, (label, field) in zip(cols, ((t("monitor.cpu"), "cpu_percent"), (t("monitor.memory"), "memory_percent"),
                                          (t("monitor.disk"), "disk_percent"))):
        value = latest.get(field)
        if value is None:
            col.caption(t("monitor.gauge_unreadable", what=label))
        else:
            col.progress(min(1.0, max(0.0, float(value) / 100)), text=f"{label} {value:.0f} %")
    rss = latest.get("process_rss_bytes")
    threads = latest.get("process_threads")
    st.caption(" · ".join([
        t("monitor.process_rss", mb=f"{rss / 2**20:,.0f}") if rss is not None else t("monitor.process_rss_unknown"),
        t("monitor.process_threads", n=threads) if threads is not None else t("monitor.threads_unknown"),
        t("monitor.sampled", when=_epoch_text(latest.get("ts")))]))
