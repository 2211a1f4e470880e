"""Data: the local corpus the Insight engine (and offline search) reads: statistics and charts, a
searchable post browser, demo data and imports (run as jobs, with their live progress).

Thin: the views are ui/data_view.py, ui/data_jobs_view.py, ui/data_charts.py and ui/data_browser.py;
the statistics, search, demo generator, importers and jobs live in core.
"""
import streamlit as st

from ui.data_browser import show_browser
from ui.data_charts import show_charts
from ui.data_jobs_view import show_job, watched_run
from ui.data_view import (REPORT_KEY, first_start_prompt, read_corpus, show_actions, show_corpus, show_last_report,
                          show_tables)
from core.work.states import RunState
from ui.i18n import t
from ui.widgets import page_setup

rt = page_setup(t("data.page_title"), "🗄️")
st.title("🗄️ " + t("data.page_title"))
st.caption(t("data.page_caption"))

if not rt.db.ok:
    st.caption(t("data.no_database"))
    st.stop()

corpus = read_corpus(rt)
if corpus is None:
    st.stop()
summary, stats = corpus
total = summary["total"]
show_corpus(rt, summary)
if total == 0:
    first_start_prompt()

job_run = watched_run(rt)
show_job(rt, job_run)
if REPORT_KEY in st.session_state:
    show_last_report(st.session_state[REPORT_KEY])
busy = job_run is not None and job_run.status in RunState.OPEN

if total == 0:
    show_actions(rt, total, busy)
else:
    overview, browse, add = st.tabs([t("data.tab_overview"), t("data.tab_browse"), t("data.tab_add")])
    with overview:
        show_charts(rt)
        show_tables(stats, summary)
    with browse:
        show_browser(rt, sorted(summary["by_platform"]))
    with add:
        show_actions(rt, total, busy)
