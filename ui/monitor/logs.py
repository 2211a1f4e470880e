"""Monitor tab 8, Logs: the log files tailed by byte offset, filtered by engine, level, trace and text;
a live fragment every 3 s."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.console.logview import LogView
from core.infra.logs import ENGINE_SINKS
from core.runtime import Runtime

from ui.monitor.common import _table
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
    engine = c1.radio("Engine", ENGINE_CHOICES, horizontal=True, key=f"{key}_log_engine")
    level = c2.select_slider("Minimum level", LEVEL_CHOICES, value="ALL", key=f"{key}_log_level")
    c3, c4 = st.columns(2)
    trace = c3.text_input("Trace id (prefix)", key=f"{key}_log_trace").strip()
    text = c4.text_input("Text", key=f"{key}_log_text").strip()
    _logs_live(key, None if engine == "all" else engine, None if level == "ALL" else level, trace or None,
               text or None)


@st.fragment(run_every=3)
def _logs_live(key: str, engine: str | None, min_level: str | None, trace: str | None, text: str | None) -> None:
    render_logs(get_runtime(), key, engine=engine, min_level=min_level, trace=trace, text=text)


def render_logs(rt: Runtime, key: str, *, engine: str | None = None, min_level: str | None = None,
                trace: str | None = None, text: str | None = None, limit: int = LOG_LINES) -> None:
    """Body of the live log panel: reads only what the files gained since the last poll."""
    view = logview_for(rt, key)
    view.poll()
    for problem in view.problems:
        st.warning(f"Log viewer: {problem}")
    frame = view.frame(engine=engine, min_level=min_level, trace=trace, text=text, limit=limit)
    files = view.available()
    if frame.empty:
        st.caption(("No log lines match these filters." if files else f"No log files in {view.log_dir} yet.")
                   + f" Tailing {', '.join(files) or 'nothing'}.")
        return
    raw = int((~frame["parsed"].astype(bool)).sum())
    shown = frame.iloc[::-1][["time", "level", "sink", "trace", "location", "message", "parsed", "file"]]
    _table(shown.rename(columns={"sink": "engine"}),
           column_config={"parsed": st.column_config.CheckboxColumn("parsed", help="unparsed lines are shown raw")})
    st.caption(f"{len(frame):,} line(s), newest first (at most {limit:,})"
               + (f" · {raw:,} line(s) did not parse and are shown raw" if raw else "")
               + f" · tailing {', '.join(files)} · times as written (local)")
