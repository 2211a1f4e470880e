"""Monitor: the operations console — supervisor and health, runs and their timelines, LLM usage and
cost, latency and errors, telemetry, traces, resources, logs and alerts (DESIGN §9).

Only the open tab runs (the tabs rerun on change), so a hidden tab costs nothing and its live
parts do not poll. The tabs' components live in ui/monitor/.
"""
import streamlit as st

from ui.monitor import KEY, TABS
from ui.widgets import page_setup

rt = page_setup("Monitor", "📈")
st.title("📈 Monitor")

for tab, show in zip(st.tabs(list(TABS), key=f"{KEY}_tab", on_change="rerun"), TABS.values()):
    with tab:
        if tab.open:
            show(rt, KEY)
