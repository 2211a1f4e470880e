"""The Monitor page's components: the operations console an operator keeps open all day.

One plain function per tab, `show_<tab>(rt, key)`, each in its own module here (what the tabs share
is in common.py), rendering what core computes (core.console.usage, core.llm.pricing,
core.console.telemetry, core.console.traces, core.console.resources, core.console.alerts,
core.console.logview, core.console.timeline, core.console.health); here are only display choices,
ordering and small totals. This package's face: KEY, TABS, the tab names and the live bodies.

The page opens one tab at a time (st.tabs with an on_change callback, `show_tabs`), so a hidden tab costs
nothing and its live parts do not poll. Live parts are fragments with run_every whose bodies
are plain functions (`render_overview`, `render_logs`, `render_resources`), so a test can run
them directly: AppTest never fires run_every.

State kept in session state, per `key`:
  {key}_tab             the open tab's id (TAB_*), whatever the language
  {key}_tab_label       the st.tabs widget (its value is the tab's name in the reader's language)
  {key}_selected_run    the run chosen on any tab (shared: Runs & jobs, Usage, Traces)
  {key}_logview         the LogView tailing the log files by byte offset
  {key}_log_line        the log line (its seq) shown whole below the Logs table
  {key}_trace           the Traces tab's input (a run's "Show its trace" button fills it, and a link
                        `Monitor?trace=<id>` from a report's provenance: traces.trace_from_link)

Reading functions in core never raise for a database problem: they return an empty frame whose
attrs["error"] is shown here as one clear message. With no database at all, the page banner
already says why, so each tab says only what it cannot show.

Issue 13: every text is t("monitor.…") from the [monitor] catalogue table (core/i18n), column headers
too (common.col_label; frames keep their raw column names, so tests and code read them as before);
every time is in the one display zone (ui.i18n.zone), tables and charts alike (common.to_zone).
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from core.i18n import LANGUAGES, tr
from core.runtime import Runtime

from ui.monitor.alerts import show_alerts
from ui.monitor.common import (KEY, TAB_ALERTS, TAB_LATENCY, TAB_LOGS, TAB_OVERVIEW, TAB_RESOURCES, TAB_RUNS,
                               TAB_TELEMETRY, TAB_TRACES, TAB_USAGE, tab_name)
from ui.monitor.logs import render_logs, show_logs
from ui.monitor.overview import render_overview, show_overview
from ui.monitor.resources import render_resources, show_resources
from ui.monitor.runs import show_runs
from ui.monitor.telemetry import show_telemetry
from ui.monitor.traces import show_traces, trace_from_link
from ui.monitor.usage import show_latency, show_usage

__all__ = ["KEY", "TABS", "show_tabs", "tab_name", "TAB_ALERTS", "TAB_LATENCY", "TAB_LOGS", "TAB_OVERVIEW",
           "TAB_RESOURCES", "TAB_RUNS", "TAB_TELEMETRY", "TAB_TRACES", "TAB_USAGE", "render_logs", "render_overview",
           "render_resources"]

# ---------------------------------------------------------------------------------------- the page

TABS: dict[str, Callable[[Runtime, str], None]] = {
    TAB_OVERVIEW: show_overview, TAB_RUNS: show_runs, TAB_USAGE: show_usage, TAB_LATENCY: show_latency,
    TAB_TELEMETRY: show_telemetry, TAB_TRACES: show_traces, TAB_RESOURCES: show_resources, TAB_LOGS: show_logs,
    TAB_ALERTS: show_alerts,
}


def _tab_changed(key: str, ids: list[str], names: list[str]) -> None:
    """The st.tabs callback (before the script runs): keep the open tab as its id."""
    name = st.session_state.get(f"{key}_tab_label")
    if name in names:
        st.session_state[f"{key}_tab"] = ids[names.index(name)]


def show_tabs(rt: Runtime, key: str = KEY) -> None:
    """The page's tabs, named in the reader's language; only the open one runs. The open tab is kept
    by id, so switching the language keeps it open (and a button can open another: `_open_trace`)."""
    trace_from_link(key)  # Monitor?trace=<id> (a report's provenance link) opens that trace
    ids = list(TABS)
    current = st.session_state.get(f"{key}_tab")
    if current not in TABS:  # a tab's name (in either language) opens it too; anything else, the first
        by_name = {tr(lang, f"monitor.tab_{i}"): i for lang in LANGUAGES for i in ids}
        current = st.session_state[f"{key}_tab"] = by_name.get(current, ids[0])
    names = [tab_name(i) for i in ids]
    st.session_state[f"{key}_tab_label"] = names[ids.index(current)]
    tabs = st.tabs(names, key=f"{key}_tab_label", on_change=_tab_changed, args=(key, ids, names))
    for tab, show in zip(tabs, TABS.values()):
        with tab:
            if tab.open:
                show(rt, key)
