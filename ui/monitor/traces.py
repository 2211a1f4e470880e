"""Monitor tab 6, Traces: every record of one trace (runs, jobs, events, LLM calls, telemetry, forum
messages, reports, log lines)."""
from __future__ import annotations

import streamlit as st

from core.console.traces import trace_bundle
from core.runtime import Runtime

from ui.i18n import show, t
from ui.monitor.common import _payload_as_text, _table, selected_run
from ui.monitor.logs import log_times


# ---------------------------------------------------------------------------------------- 6 traces

SECTIONS = ("runs", "jobs", "events", "llm_calls", "telemetry", "forum", "reports", "logs")


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
