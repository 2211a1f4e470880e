"""Data: the local corpus the Insight engine (and offline search) reads — statistics, demo data, imports.

Thin: the views are ui/data_view.py; the statistics, demo generator and importers live in core.
"""
import streamlit as st

from ui.data_view import REPORT_KEY, show_actions, show_corpus, show_report
from ui.widgets import page_setup

rt = page_setup("Data", "🗄️")
st.title("🗄️ Data")
st.caption("The local corpus: posts and comments from Weibo, Douyin, Bilibili, Xiaohongshu, Zhihu, Tieba, "
           "Kuaishou and news sites. The Insight engine searches it, and so do Query and Media when offline.")

if not rt.db.ok:
    st.caption("The corpus lives in the database, so nothing can be shown or imported until it works.")
    st.stop()

total = show_corpus(rt)
if total is None:
    st.stop()
if REPORT_KEY in st.session_state:
    show_report(st.session_state[REPORT_KEY])
show_actions(rt, total)
