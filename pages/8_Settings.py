"""Settings: edit whitelisted keys in .env, grouped in tabs, with presets and connection tests.
Secrets are masked and never shown back. The form is ui/settings_view.py."""
import streamlit as st

from ui.i18n import t
from ui.monitor.budgets import show_budgets
from ui.settings_view import render_settings, show_flash
from ui.widgets import admin_unlocked, page_setup

rt = page_setup("Settings", "⚙️")
st.title(t("settings.title"))
st.caption(t("settings.precedence", env_file=rt.settings.env_file))
show_flash()

if not admin_unlocked(rt, "settings"):
    st.stop()

show_budgets(rt)  # what SHOAL_LLM_CONCURRENCY and <ROLE>_CONCURRENCY give each endpoint now
render_settings(rt)
