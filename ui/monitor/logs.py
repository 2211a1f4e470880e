"""Monitor tab 8, Logs: the log files tailed by byte offset, filtered by engine, level, trace and text;
a live fragment every 3 s. Times in the display zone; any line's whole message below the table."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.console.logview import LogView
from core.infra.clock import server_zone
from core.infra.logs import ENGINE_SINKS
from core.runtime import Runtime

from ui.i18n import fmt_time, t
from ui.monitor.common import _table, col_label
from ui.runtime import get_runtime

LOG_LINES = 500
LEVEL_CHOICES = ("ALL", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENGINE_CHOICES = ("all", "app", *ENGINE_SINKS)


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
    engines = {e: t("monitor.log_engine_all") if e == "all" else e for e in ENGINE_CHOICES}
    levels = {lv: t("monitor.log_level_all") if lv == "ALL" else lv for lv in LEVEL_CHOICES}
    engine = c1.radio(t("monitor.log_engine"), ENGINE_CHOICES, horizontal=True, key=f"{key}_log_engine",
                      format_func=engines.get)
    level = c2.select_slider(t("monitor.log_level"), LEVEL_CHOICES, value="ALL", key=f"{key}_log_level",
                             format_func=levels.get)
    c3, c4 = st.columns(2)
    trace = c3.text_input(t("monitor.trace_prefix"), key=f"{key}_log_trace").strip()
    text = c4.text_input(t("monitor.log_text"), key=f"{key}_log_text").strip()
    _logs_live(key, None if engine == "all" else engine, None if level == "ALL" else level, trace or None,
               text or None)


@st.fragment(run_every=3)
def _logs_live(key: str, engine: str | None, min_level: str | None, trace: str | None, text: str | None) -> None:
    render_logs(get_runtime(), key, engine=engine, min_level=min_level, trace=trace, text=text)


def log_times(values: pd.Series) -> pd.Series:
    """Log files' times (written in this server's local time, without a zone) as aware times, which
    the table shows in the display zone like every other time."""
    times = pd.to_datetime(values, format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    return times.dt.tz_localize(server_zone(), ambiguous="NaT", nonexistent="NaT")


def render_logs(rt: Runtime, key: str, *, engine: str | None = None, min_level: str | None = None,
                trace: str | None = None, text: str | None = None, limit: int = LOG_LINES) -> None:
    """Body of the live log panel: reads only what the files gained since the last poll. The table
    gives the message its widest column; the line picked below it is shown whole, however long."""
    view = logview_for(rt, key)
    view.poll()
    for problem in view.problems:
        st.warning(t("monitor.log_problem", problem=problem))
    frame = view.frame(engine=engine, min_level=min_level, trace=trace, text=text, limit=limit)
    files = view.available()
    if frame.empty:
        st.caption((t("monitor.no_log_lines") if files else t("monitor.no_log_files", folder=str(view.log_dir)))
                   + " " + t("monitor.tailing", files=", ".join(files) or "—"))
        return
    raw = int((~frame["parsed"].astype(bool)).sum())
    shown = frame.iloc[::-1][["time", "level", "sink", "message", "trace", "location", "parsed", "file", "seq"]]
    shown = shown.rename(columns={"sink": "engine"}).assign(time=lambda f: log_times(f["time"]))
    _table(shown, column_config={
        "message": st.column_config.TextColumn(col_label("message"), width="large",
                                               help=t("monitor.log_message_help")),
        "parsed": st.column_config.CheckboxColumn(col_label("parsed"), help=t("monitor.log_parsed_help")),
        "seq": None}, column_order=["time", "level", "engine", "message", "trace", "location", "parsed", "file"])
    st.caption(t("monitor.log_lines", n=f"{len(frame):,}", limit=f"{limit:,}")
               + (" · " + t("monitor.log_raw", n=f"{raw:,}") if raw else "")
               + " · " + t("monitor.tailing", files=", ".join(files)))
    _full_line(shown, key)


def _full_line(shown: pd.DataFrame, key: str) -> None:
    """One line of the table, whole: its message however long, and the raw line as written."""
    rows = {int(r.seq): r for r in shown.itertuples(index=False)}
    labels = {seq: _line_label(row) for seq, row in rows.items()}
    chosen = st.selectbox(t("monitor.log_full_line"), list(rows), key=f"{key}_log_line", format_func=labels.get)
    row = rows.get(chosen)
    if row is not None:
        st.code(row.message, language=None, wrap_lines=True)


def _line_label(row) -> str:
    when = "—" if pd.isna(row.time) else fmt_time(row.time.tz_convert("UTC").tz_localize(None))
    message = str(row.message)
    level = row.level if isinstance(row.level, str) and row.level else "—"
    return f"{when} · {level} · {message[:80]}{'…' if len(message) > 80 else ''}"
