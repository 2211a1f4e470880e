"""Monitor: the operations console — supervisor and health, runs and their timelines, LLM usage and
cost, latency and errors, telemetry, traces, resources, logs and alerts (DESIGN §9).

Only the open tab runs (the tabs rerun on change), so a hidden tab costs nothing and its live
parts do not poll. The tabs' components live in ui/monitor/. Every text comes from the [monitor]
catalogue table; every time is in the one display zone, named under the title.
"""
import streamlit as st

from ui.i18n import t
from ui.monitor import KEY, show_tabs
from ui.monitor.common import zone_label
from ui.widgets import page_setup

rt = page_setup(t("monitor.title"), "📈")
st.title(f"📈 {t('monitor.title')}")
st.caption(t("monitor.times_in", zone=zone_label()))
show_tabs(rt, KEY)
