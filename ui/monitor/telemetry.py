"""Monitor tab 5, Telemetry: the recorded telemetry events, filtered by type, run, trace and time."""
from __future__ import annotations

import streamlit as st

from core.console.telemetry import query_telemetry, telemetry_types
from core.runtime import Runtime

from ui.monitor.common import WINDOWS, _frame_error, _no_database, _payload_as_text, _since, _table


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
