"""Monitor tab 6, Traces: every record of one trace (runs, jobs, events, LLM calls, telemetry, forum
messages, reports, log lines)."""
from __future__ import annotations

import re

import streamlit as st

from core.console.traces import trace_bundle
from core.runtime import Runtime

from ui.i18n import show, t
from ui.monitor.common import _open_trace, _payload_as_text, _table, selected_run
from ui.monitor.logs import log_times


# ---------------------------------------------------------------------------------------- 6 traces

SECTIONS = ("runs", "jobs", "events", "llm_calls", "telemetry", "forum", "reports", "logs")
TRACE_PARAM = "trace"  # Monitor?trace=<id>: the trace a link opens (the reports' provenance links)
_TRACE_RE = re.compile(r"^[A-Za-z0-9._-]{4,80}$")


def trace_from_link(key: str) -> None:
    """A link `Monitor?trace=<id>` opens the Traces tab on that trace, once: the parameter is then
    removed, so the reader's own choices hold afterwards. An id that is not a trace id is ignored."""
    try:
        wanted = (st.query_params.get(TRACE_PARAM) or "").strip()
        if TRACE_PARAM in st.query_params:
            del st.query_params[TRACE_PARAM]
    except Exception:  # noqa: BLE001 - outside a session
        return
    if _TRACE_RE.match(wanted):
        _open_trace(key, wanted)


def section_name(name: str) -> str:
    return t(f"monitor.section_{name}")


def show_traces(rt: Runtime, key: str) -> None:
    k = f"{key}_trace"
    run = selected_run(rt, key)
    run_id = run.id if run else None
    if k not in st.session_state:  # opened afresh: the chosen run's trace, unless the operator typed one for it
        last = st.session_state.get(f"{key}_trace_last")
        fresh = last is None or st.session_state.get(f"{key}_trace_run") != run_id
        st.session_state[k] = (run.trace_id if run else "") if fresh else last
    st.session_state[f"{key}_trace_run"] = run_id
    trace = st.text_input(t("monitor.trace_input"), key=k).strip()
    st.session_state[f"{key}_trace_last"] = trace
    if not trace:
        st.caption(t("monitor.trace_give"))
        return
    bundle = trace_bundle(rt.db if rt.db.ok else None, trace, rt.settings.log_dir)
    for problem in bundle["problems"]:
        st.warning(t("monitor.trace_problem", problem=show(problem)))
    counts, truncated = bundle["counts"], bundle["truncated"]
    if counts:
        total = sum(counts.values())
        st.markdown(t("monitor.trace_records", n=f"{total:,}", trace=trace) + " " + " · ".join(
            f"{section_name(name)} {counts.get(name, 0):,}" + ("+" if truncated.get(name) else "")
            for name in SECTIONS))
    for name in SECTIONS:
        frame = bundle[name]
        more = " " + t("monitor.truncated") if truncated.get(name) else ""
        st.markdown(f"**{section_name(name)}** · {len(frame):,}{more}")
        if frame.empty:
            st.caption(t("monitor.trace_none", what=section_name(name).lower()))
        else:
            if name == "logs" and "time" in frame.columns:  # log files keep the server's local time
                frame = frame.assign(time=log_times(frame["time"]))
            _table(_payload_as_text(frame))
