"""Monitor tab 6, Traces: every record of one trace (runs, jobs, events, LLM calls, telemetry, forum
messages, reports, log lines)."""
from __future__ import annotations

import streamlit as st

from core.console.traces import trace_bundle
from core.runtime import Runtime

from ui.monitor.common import _payload_as_text, _table, selected_run


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
