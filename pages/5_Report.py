"""Report: generate, follow and download the final report of a run.

Thin: the report engine lives in core/report.py, the page's components in ui/report_view.py.
"""
import streamlit as st

from ui.i18n import t
from ui.report_view import show
from ui.widgets import page_setup

rt = page_setup(t("report.page_title"), "📄")
st.title(t("report.heading"))
st.caption(t("report.intro"))

if rt.db.ok:
    show(rt)
