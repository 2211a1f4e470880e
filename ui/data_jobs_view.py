"""The Data page's running data job (demo data, a file import): a live progress bar while it runs, its
report when it ends. The job runs on the supervisor (core.corpus.data_jobs): leaving the page does
not stop it, and coming back shows it again (the newest data run that is still open).
"""
from __future__ import annotations

import streamlit as st

from core.corpus.data_jobs import DataJobResult, data_job, latest_data_run, progress_message
from core.corpus.importers import ImportReport
from core.infra.redact import scrub_url_text
from core.work.runs import get_run
from core.work.states import RunState
from ui.cached import clear_corpus_cache
from ui.access import has_control
from ui.i18n import show, t
from ui.runtime import get_runtime
from ui.widgets import badge

RUN_KEY = "data_job_run"  # the data run this session started or watches
CLEARED_KEY = "data_job_cleared"  # the finished run whose new figures were already fetched
POLL_S = 1


def watch(run_id: str) -> None:
    st.session_state[RUN_KEY] = run_id


def watched_run(rt):
    """The run to show: the one this session started, else the newest data run while it is open."""
    run_id = st.session_state.get(RUN_KEY)
    run = get_run(rt.db, run_id) if run_id else None
    if run is None:
        latest = latest_data_run(rt.db)
        if latest is not None and latest.status in RunState.OPEN:
            run = latest
    return run


def show_job(rt, run) -> None:
    """The watched data job (``watched_run``): live while it runs, then its outcome (kept until dismissed)."""
    if run is None:
        return
    if run.status in RunState.OPEN:
        _live(run.id)
        return
    if st.session_state.get(CLEARED_KEY) != run.id:
        clear_corpus_cache()  # the figures above are the new ones
        st.session_state[CLEARED_KEY] = run.id
    job = data_job(rt.db, run.id)
    result = DataJobResult.of(job)
    if result is not None:
        show_report(_what(result.what, result.name), result.report)
    else:
        error = scrub_url_text((job.error if job is not None else None) or run.error or "")
        what = _what((run.params or {}).get("what"), run.topic)
        say = st.info if run.status == RunState.CANCELLED else st.error
        say(t("data.job_ended", status=badge(run.status), what=what, error=error or "—"))
    if st.button(t("data.dismiss"), key="data_dismiss_job"):
        st.session_state.pop(RUN_KEY, None)
        st.session_state[CLEARED_KEY] = run.id
        st.rerun()


def _what(kind: str | None, name: str | None) -> str:
    if kind == "demo":
        return t("data.what_demo")
    return t("data.what_import", name=name or "")


@st.fragment(run_every=POLL_S)
def _live(run_id: str) -> None:
    rt = get_runtime()
    run = get_run(rt.db, run_id)
    if run is None or run.status not in RunState.OPEN:
        st.rerun()  # the whole page: the new figures, charts and the job's report
    job = data_job(rt.db, run_id)
    what = _what((run.params or {}).get("what"), run.topic)
    message = show(progress_message(job)) or t("data.job_waiting")
    st.markdown(f"{badge(run.status)} **{what}**")
    st.progress(float(job.progress if job is not None else 0.0), text=message)
    st.caption(t("data.job_keeps_running"))
    if has_control(rt) and run.status != RunState.CANCELLING and \
            st.button(t("data.job_cancel"), key=f"data_job_cancel_{run_id}"):
        rt.require_supervisor().cancel_run(run_id, timeout=5)


def show_report(what: str, r: ImportReport) -> None:
    """An import's outcome: counts, then the broken rows by file line, and notes."""
    line = t("data.report_line", what=what, imported=r.imported, updated=r.updated, skipped=r.skipped,
             errors=r.error_count, seconds=round(r.seconds, 3))
    if r.error_count and not (r.imported or r.updated or r.skipped):
        first = show(r.errors[0][1]) if r.errors else t("data.see_errors")
        st.error(t("data.report_nothing", line=line, first=first))
    elif r.error_count:
        st.warning(t("data.report_partial", line=line))
    else:
        st.success(line)
    if r.errors:
        import pandas as pd

        shown = pd.DataFrame([(row, show(msg)) for row, msg in r.errors], columns=["row", "error"])
        st.dataframe(shown, hide_index=True, width="stretch",
                     column_config={"row": st.column_config.NumberColumn(t("data.col_row")),
                                    "error": st.column_config.TextColumn(t("data.col_error"))})
        if r.error_count > len(r.errors):
            st.caption(t("data.errors_first", shown=len(r.errors), total=r.error_count))
    if r.notes:
        with st.expander(t("data.notes")):
            for note in r.notes:
                st.markdown(f"- {show(note)}")
