"""The Data page's views: corpus statistics, demo data and imports (started as supervisor jobs), and
the MindSpider import.

The statistics, the demo generator, the importers and the URL checks live in core; the jobs in
core.corpus.data_jobs. This module lays them out and guards the actions that change the corpus
behind the admin password (when one is set). The live job panel is ui/data_jobs_view.py, the charts
ui/data_charts.py, the post browser ui/data_browser.py.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.corpus.data_jobs import DEMO_POSTS, DEMO_SEED, MAX_DEMO_POSTS, save_upload, start_demo_data, start_import
from core.corpus.demo import DEMO_DOMAIN, DEMO_TOPICS
from core.corpus.importers import ImportReport
from core.corpus.mindspider import import_mindspider, url_problem
from core.infra.redact import mask_url, scrub_url_text
from ui.cached import cached_corpus_stats, cached_corpus_summary, clear_corpus_cache
from ui.data_jobs_view import show_report, watch
from ui.i18n import fmt_time, t
from ui.widgets import admin_unlocked

REPORT_KEY = "data_last_report"  # the MindSpider import's report (that import runs on the page)
UPLOAD_KEY = "data_upload"
_UPLOADS = "data_upload_count"  # bumped after each upload, so the uploader starts empty again
UPLOAD_TYPES = ["csv", "tsv", "txt", "jsonl", "ndjson", "json"]


def upload_key() -> str:
    n = int(st.session_state.get(_UPLOADS, 0))
    return UPLOAD_KEY if n == 0 else f"{UPLOAD_KEY}_{n}"


def upload_limit_mb() -> int:
    try:
        return int(st.get_option("server.maxUploadSize"))
    except Exception:  # noqa: BLE001
        return 200


def remember(what: str, report, url: str = "") -> None:
    """Keep the MindSpider import's report for the next run of the page (which shows the new totals)."""
    scrubbed = report.scrubbed(lambda text: scrub_url_text(text, url))
    st.session_state[REPORT_KEY] = (what, scrubbed)
    clear_corpus_cache()


def show_last_report(entry: tuple[str, ImportReport]) -> None:
    show_report(*entry)
    if st.button(t("data.dismiss"), key="data_dismiss_report"):
        st.session_state.pop(REPORT_KEY, None)
        st.rerun()


def read_corpus(rt) -> tuple[dict, object] | None:
    try:
        return cached_corpus_summary(rt), cached_corpus_stats(rt)
    except Exception as exc:  # noqa: BLE001 - a database hiccup is a message, not a traceback
        st.error(t("data.read_failed", error=scrub_url_text(str(exc))))
        return None


def show_corpus(rt, summary: dict) -> None:
    """The corpus's figures."""
    total = summary["total"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("data.metric_total"), f"{total:,}")
    c2.metric(t("data.metric_posts"), f"{summary['by_kind'].get('post', 0):,}")
    c3.metric(t("data.metric_comments"), f"{summary['by_kind'].get('comment', 0):,}")
    c4.metric(t("data.metric_demo"), f"{summary['demo']:,}")
    if not total:
        st.caption(t("data.empty"))
        return
    if summary["first_post"]:
        first = pd.Timestamp(summary["first_post"]).to_pydatetime()
        newest = pd.Timestamp(summary["newest_post"]).to_pydatetime()
        span = t("data.span", first=fmt_time(first)[:16], newest=fmt_time(newest)[:16], days=summary["span_days"])
        if summary["undated"]:
            span += " " + t("data.undated", n=summary["undated"])
    else:
        span = t("data.no_times")
    st.caption(span)
    if summary["demo"]:
        st.caption(t("data.demo_note", n=summary["demo"], domain=DEMO_DOMAIN, author="演示用户…"))


def show_tables(stats, summary: dict) -> None:
    left, right = st.columns([3, 2])
    left.dataframe(pd.DataFrame(stats.by_platform_source, columns=["platform", "source", "posts"]), hide_index=True,
                   width="stretch", column_config={"platform": t("data.col_platform"),
                                                   "source": t("data.col_source"), "posts": t("data.col_posts")})
    groups = [(t("data.by_kind"), k, n) for k, n in summary["by_kind"].items()] + \
             [(t("data.by_source"), k, n) for k, n in summary["by_source"].items()]
    right.dataframe(pd.DataFrame(groups, columns=["by", "value", "posts"]), hide_index=True, width="stretch",
                    column_config={"by": t("data.col_by"), "value": t("data.col_value"),
                                   "posts": t("data.col_posts")})


def first_start_prompt() -> None:
    st.info(t("data.first_start", posts=DEMO_POSTS, topics=len(DEMO_TOPICS)), icon="🚀")


def show_actions(rt, total: int, busy: bool) -> None:
    """Demo data and imports (jobs; one data job at a time from this page), and the MindSpider import,
    behind the admin password."""
    if not admin_unlocked(rt, "data"):
        st.caption(t("data.locked"))
        return
    st.subheader(t("data.demo_title"))
    if total:
        st.caption(t("data.demo_caption"))
    with st.expander(t("data.demo_options")):
        o1, o2 = st.columns(2)
        seed = o1.number_input(t("data.demo_seed"), min_value=0, max_value=2**31 - 1, value=DEMO_SEED, step=1,
                               key="demo_seed")
        n_posts = o2.number_input(t("data.demo_posts"), min_value=1, max_value=MAX_DEMO_POSTS, value=DEMO_POSTS,
                                  step=500, key="demo_posts")
    if st.button(t("data.demo_generate"), type="primary" if total == 0 else "secondary", key="demo_generate",
                 disabled=busy, help=t("data.busy") if busy else None):
        try:
            watch(start_demo_data(rt.require_supervisor(), rt.settings, seed=int(seed), posts=int(n_posts)))
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            st.error(t("data.start_failed", error=scrub_url_text(str(exc))))
        else:
            st.rerun()
    st.caption(t("data.demo_topics", topics="、".join(DEMO_TOPICS)))

    st.subheader(t("data.import_title"))
    st.caption(t("data.import_caption"))
    st.caption(t("data.upload_limit", mb=upload_limit_mb()))
    upload = st.file_uploader(t("data.upload_label"), type=UPLOAD_TYPES, key=upload_key())
    if st.button(t("data.import_file"), disabled=upload is None or busy, key="data_import_file",
                 help=t("data.busy") if busy else None):
        try:
            path = save_upload(upload, rt.settings, upload.name)
            name = upload.name
            _forget(upload)
            watch(start_import(rt.require_supervisor(), rt.settings, path, name=name))
        except Exception as exc:  # noqa: BLE001 - a full disk, a stopped supervisor
            st.error(t("data.start_failed", error=scrub_url_text(str(exc))))
        else:
            st.rerun()

    show_mindspider(rt)


def _forget(upload) -> None:
    """Drop the upload from this server's memory once it is on disk: Streamlit keeps uploads in
    memory until the widget lets them go, so the uploader gets a new key (it starts empty) and the
    session's copy is removed now."""
    st.session_state[_UPLOADS] = int(st.session_state.get(_UPLOADS, 0)) + 1
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is not None and getattr(upload, "file_id", None):
            ctx.uploaded_file_mgr.remove_file(ctx.session_id, upload.file_id)
    except Exception:  # noqa: BLE001 - best effort: the new key lets it go at the session's end anyway
        pass


def show_mindspider(rt) -> None:
    st.subheader(t("data.ms_title"))
    st.caption(t("data.ms_caption"))
    with st.form("mindspider_form"):
        ms_url = st.text_input(t("data.ms_url"), type="password", key="mindspider_url",
                               placeholder=t("data.ms_placeholder"))
        limit = st.number_input(t("data.ms_limit"), min_value=0, value=0, step=1000, key="mindspider_limit")
        submitted = st.form_submit_button(t("data.ms_import"))
    if not submitted:
        return
    url = (ms_url or "").strip()
    problem = url_problem(url)
    if problem:
        st.error(t("data.ms_bad_url", problem=problem))
        return
    with st.spinner(t("data.ms_importing", url=mask_url(url))):
        try:
            report = import_mindspider(rt.db, url, limit_per_table=int(limit) or None)
        except Exception as exc:  # noqa: BLE001 - shown without the password, not raised
            st.error(t("data.ms_failed", url=mask_url(url), error=scrub_url_text(str(exc), url)))
            return
    remember(t("data.what_mindspider", url=mask_url(url)), report, url)
    st.rerun()
