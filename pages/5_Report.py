"""Report: generate, follow and download the final report of a run."""
import streamlit as st

from ui.widgets import not_available, page_setup

rt = page_setup("Report", "📄")
st.title("📄 Report")
not_available("The report engine", "It arrives after the engines and the forum: report types, sections written in "
              "parallel, a self-contained HTML file with Markdown and JSON downloads.")
