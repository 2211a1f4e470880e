"""What the Monitor page's tabs share: the tab names, time windows, table and chart helpers, and the
run chosen on any tab. Names with a leading underscore are private to ui/monitor/.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Callable

import altair as alt
import pandas as pd
import streamlit as st

from core.infra.models import from_epoch, utcnow
from core.runtime import Runtime
from core.work.runs import RunView, list_runs

from ui.widgets import fmt_time

KEY = "monitor"
TAB_OVERVIEW, TAB_RUNS, TAB_USAGE, TAB_LATENCY, TAB_TELEMETRY, TAB_TRACES, TAB_RESOURCES, TAB_LOGS, TAB_ALERTS = (
    "Overview", "Runs & jobs", "Usage & cost", "Latency & errors", "Telemetry", "Traces", "Resources", "Logs",
    "Alerts")
WINDOWS: dict[str, timedelta | None] = {"1 h": timedelta(hours=1), "24 h": timedelta(days=1),
                                        "7 days": timedelta(days=7), "30 days": timedelta(days=30),
                                        "90 days": timedelta(days=90), "all": None}


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
