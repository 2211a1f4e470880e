"""Monitor tab 5, Telemetry: the recorded telemetry events, filtered by type, run, trace and time."""
from __future__ import annotations

import streamlit as st

from core.console.telemetry import query_telemetry, telemetry_types
from core.runtime import Runtime

from ui.i18n import t
from ui.monitor.common import WINDOWS, _frame_error, _no_database, _payload_as_text, _since, _table, names


# ---------------------------------------------------------------------------------------- 5 telemetry


def show_telemetry(rt: Runtime, key: str) -> None:
    if rt.telemetry is not None:
        s = rt.telemetry.stats()
        if s.dropped:
            st.warning(t("monitor.tel_dropped_missing", n=f"{s.dropped:,}"))
        st.caption(t("monitor.tel_writer", written=f"{s.written:,}", dropped=f"{s.dropped:,}",
                     buffered=f"{s.buffered:,}"))
    if _no_database(rt, t("monitor.what_telemetry")):
        return
    types = telemetry_types(rt.db)
    c1, c2, c3 = st.columns(3)
    chosen = c1.multiselect(t("monitor.tel_types"), types, key=f"{key}_tel_types", placeholder=t("monitor.all_types"))
    run_id = c2.text_input(t("monitor.run_id"), key=f"{key}_tel_run").strip()
    trace = c3.text_input(t("monitor.trace_prefix"), key=f"{key}_tel_trace").strip()
    d1, d2 = st.columns([3, 1])
    window = d1.radio(t("monitor.time_range"), tuple(WINDOWS), index=1, horizontal=True, key=f"{key}_tel_window",
                      format_func=names("window_"))
    limit = int(d2.number_input(t("monitor.newest"), 10, 5000, 500, step=100, key=f"{key}_tel_limit"))
    frame = query_telemetry(rt.db, types=chosen or None, run_id=run_id or None, trace_id=trace or None,
                            since=_since(window), limit=limit)
    if _frame_error(frame):
        return
    if frame.empty:
        st.caption(t("monitor.no_telemetry_match") if types else t("monitor.no_telemetry"))
        return
    st.caption(t("monitor.tel_events", n=f"{len(frame):,}")
               + (" " + t("monitor.limit_reached") if len(frame) >= limit else ""))
    _table(_payload_as_text(frame))
