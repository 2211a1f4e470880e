"""What the Monitor page's tabs share: the tab ids and names, time windows, table and chart helpers
(column headers in the reader's language, times in the one display zone), and the run chosen on any
tab. Names with a leading underscore are private to ui/monitor/.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Callable

import altair as alt
import pandas as pd
import streamlit as st

from core.i18n import has, tr
from core.infra.clock import zone_name
from core.infra.models import from_epoch, utcnow
from core.runtime import Runtime
from core.work.runs import RunView, list_runs

from ui.i18n import lang, status_label, t, zone
from ui.widgets import fmt_time

KEY = "monitor"
# Tab ids: what session state keeps ({key}_tab), whatever the language; the names are t("monitor.tab_<id>").
TAB_OVERVIEW, TAB_RUNS, TAB_USAGE, TAB_LATENCY, TAB_TELEMETRY, TAB_TRACES, TAB_RESOURCES, TAB_LOGS, TAB_ALERTS = (
    "overview", "runs", "usage", "latency", "telemetry", "traces", "resources", "logs", "alerts")
WINDOWS: dict[str, timedelta | None] = {"1h": timedelta(hours=1), "24h": timedelta(days=1),
                                        "7d": timedelta(days=7), "30d": timedelta(days=30),
                                        "90d": timedelta(days=90), "all": None}


def tab_name(tab: str) -> str:
    return t(f"monitor.tab_{tab}")


def window_name(window: str) -> str:
    return t(f"monitor.window_{window}")


def period_name(period: str) -> str:
    """day / week / month / hour / 5min in words."""
    return t(f"monitor.period_{period}")


def names(prefix: str) -> Callable[[str], str]:
    """A widget's format_func naming its options `monitor.<prefix><option>` in the language of this run
    (bound now: Streamlit may call it later, outside the script run)."""
    current = lang()
    return lambda option: tr(current, f"monitor.{prefix}{option}")


# ---------------------------------------------------------------------------------------- helpers


def zone_label() -> str:
    """The display zone, named: `Asia/Shanghai (UTC+08:00)`."""
    return zone_name(zone())


def to_zone(values: pd.Series) -> pd.Series:
    """Stored naive-UTC datetimes as naive wall-clock times of the display zone (what tables and charts
    show; a chart draws them on a UTC scale, so the browser's own zone does not shift them again)."""
    times = pd.to_datetime(values, errors="coerce")
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    return times.dt.tz_convert(zone()).dt.tz_localize(None)


def in_zone(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of `frame` with these datetime columns in the display zone (the frame may be cached: not changed)."""
    frame = frame.copy()
    for c in columns:
        if c in frame.columns and not frame.empty:
            frame[c] = to_zone(frame[c])
    return frame


def col_label(column: str) -> str:
    """A column's header in the reader's language (the frame keeps its raw column names)."""
    key = f"monitor.col_{column}"
    return t(key) if has(key) else column


def _is_time(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    sample = series.dropna().head(5)
    return not sample.empty and all(isinstance(v, datetime) for v in sample)


def _table(frame: pd.DataFrame, column_config: dict | None = None, zoned: tuple[str, ...] = (), **kwargs) -> None:
    """A dataframe whose headers are translated and whose datetime columns are in the display zone
    (stored naive UTC or aware; `zoned` names columns already converted)."""
    config = dict(column_config or {})
    frame = frame.copy()
    for c in frame.columns:
        if _is_time(frame[c]):
            if c not in zoned:
                frame[c] = to_zone(frame[c])
            config.setdefault(c, st.column_config.DatetimeColumn(
                t("monitor.col_in_zone", name=col_label(c), zone=zone_label()), format="YYYY-MM-DD HH:mm:ss"))
        else:
            config.setdefault(c, st.column_config.Column(col_label(c)))
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config, **kwargs)


def _no_database(rt: Runtime, what: str) -> bool:
    """True (and one honest line) when the database is unavailable. `what` is already translated."""
    if rt.db.ok:
        return False
    st.info(t("monitor.needs_database", what=what))
    return True


def _frame_error(frame: pd.DataFrame) -> bool:
    error = frame.attrs.get("error") if frame is not None else None
    if error:
        st.error(t("monitor.read_error", error=error))
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


def _time_x(field: str, title: str | None = None, fmt: str | None = None) -> alt.X:
    """A time axis over display-zone wall-clock times (see to_zone), titled with the zone's name. A UTC
    scale draws them as they are, whatever the browser's own zone."""
    axis = alt.Axis(format=fmt, labelOverlap=True) if fmt else alt.Axis(labelOverlap=True)
    name = t("monitor.axis_time", zone=zone_label()) if title is None else t(
        "monitor.axis_time_per", per=title, zone=zone_label())
    return alt.X(f"{field}:T", title=name, scale=alt.Scale(type="utc"), axis=axis)


def with_time_text(frame: pd.DataFrame, *fields: str, ms: bool = False) -> pd.DataFrame:
    """`<field>_text` beside each time field: what a tooltip shows, as it is (a temporal tooltip would be
    formatted again in the browser's own zone)."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if ms else "%Y-%m-%d %H:%M:%S"
    out = {f"{f}_text": pd.to_datetime(frame[f]).dt.strftime(fmt).str[:-3 if ms else None] for f in fields}
    return frame.assign(**out)


def _time_tip(field: str) -> alt.Tooltip:
    """The tooltip of a time field made by with_time_text."""
    return alt.Tooltip(f"{field}_text:N", title=col_label(field))


def _with_end(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """`bucket_end` beside `bucket`, so a bar spans its whole period on a time axis."""
    start = pd.to_datetime(frame["bucket"])
    step = {"month": pd.offsets.MonthBegin(1), "week": pd.Timedelta(days=7), "day": pd.Timedelta(days=1),
            "hour": pd.Timedelta(hours=1)}.get(freq) or pd.Timedelta(freq)
    return frame.assign(bucket=start, bucket_end=start + step)


def _bars(frame: pd.DataFrame, freq: str, title: str, y: str, y_title: str, color: str, color_title: str,
          tooltip: list) -> None:
    """Bars per time bucket; `frame`'s buckets are already display-zone times (the calls were converted)."""
    _chart(alt.Chart(with_time_text(_with_end(frame, freq), "bucket"), title=title).mark_bar()
           .encode(x=_time_x("bucket", period_name(freq)), x2="bucket_end:T", y=alt.Y(f"{y}:Q", title=y_title),
                   color=alt.Color(f"{color}:N", title=color_title),
                   tooltip=[_time_tip("bucket"), *[alt.Tooltip(c, title=col_label(c)) for c in tooltip]]))


def _safe(what: str, fn: Callable[[], Any], default: Any) -> Any:
    """Run a core read that may raise (runs, status counts); show one clear message instead. `what` is
    already translated."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the console shows what it can
        st.error(t("monitor.cannot_read", what=what, error=f"{type(exc).__name__}: {str(exc)[:200]}"))
        return default


# ---------------------------------------------------------------------------------------- runs (shared)


def _runs(rt: Runtime) -> list[RunView]:
    if not rt.db.ok:
        return []
    return _safe(t("monitor.what_runs"), lambda: list_runs(rt.db, limit=50), [])


def selected_run(rt: Runtime, key: str, runs: list[RunView] | None = None) -> RunView | None:
    """The run chosen on any tab, else the newest one."""
    runs = _runs(rt) if runs is None else runs
    chosen = st.session_state.get(f"{key}_selected_run")
    return next((r for r in runs if r.id == chosen), runs[0] if runs else None)


def run_choice(rt: Runtime, key: str, widget_key: str, label: str | None = None) -> RunView | None:
    """A run picker that shares its choice with the other tabs' pickers. None when there are no runs."""
    runs = _runs(rt)
    if not runs:
        return None
    ids = [r.id for r in runs]
    current = selected_run(rt, key, runs)
    labels = {r.id: f"{r.id} · {status_label(r.status)} · {fmt_time(r.created_at)} · {r.topic[:40]}" for r in runs}
    chosen = st.selectbox(label or t("monitor.run"), options=ids, index=ids.index(current.id) if current else 0,
                          format_func=labels.get, key=widget_key)
    st.session_state[f"{key}_selected_run"] = chosen
    return next((r for r in runs if r.id == chosen), None)


def _open_trace(key: str, trace_id: str) -> None:
    """Button callback (runs before the script): open the Traces tab on this trace."""
    st.session_state[f"{key}_tab"] = TAB_TRACES
    st.session_state[f"{key}_trace"] = trace_id
