"""Report: generate, follow and download the final report of a run.

Thin: the report engine lives in core/report.py, the page's components in ui/report_view.py.
"""
import streamlit as st

from ui.report_view import show
from ui.widgets import page_setup

rt = page_setup("Report", "📄")
st.title("📄 Report")
st.caption("Every analysis ends with a report: its type, an outline, sections written in parallel from the three "
           "engines and the forum, then one self-contained HTML file with Markdown and JSON beside it.")

if rt.db.ok:
    show(rt)
