"""The shared body of the three engine pages (one design, three configurations).

Status is read in one place: the live panel (a fragment, every 2 s) reads the run's row and the
job's row together and shows the run's header and the job's state from that one read. When the
run's status, or the engine's newest job, is no longer what the page was built with (the run
picker, the Stop/Re-run buttons), the panel reruns the whole page, so picker, buttons and header
always agree. The panel keeps a fixed height (tabs with fixed-height boxes), so the live console
below it keeps its place as the report grows.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import MutableMapping

import pandas as pd
import streamlit as st

from core.analysis import rerun_engine
from core.console.usage import llm_calls_frame, usage_by_model
from core.infra.logtail import LogTail
from core.research.engine import ENGINES, engine_mode
from core.research.results import EngineProgress, load_engine_progress
from core.work.runs import JobSummary, RunView, get_job_summary, get_run, job_summaries
from core.work.states import JobState

from .access import allow_run_start, count_run_start
from .budget_fields import budget_badge
from .i18n import show as show_msg
from .i18n import status_label, t
from .media_gallery import gallery_html
from .runtime import get_runtime
from .widgets import admin_unlocked, badge, fmt_duration, fmt_time, outcome_notice, page_setup, run_picker, usage_line

ICONS = {"query": "🔎", "media": "🎞️", "insight": "🧠"}
TITLE_KEYS = {"query": "engine.title_query", "media": "engine.title_media", "insight": "engine.title_insight"}
DESCRIPTION_KEYS = {"query": "engine.about_query", "media": "engine.about_media", "insight": "engine.about_insight"}
STAGE_KEYS = {"done": "engine.stage_done", "summarised": "engine.stage_summarised", "searching": "engine.stage_searching"}
CONSOLE_LINES = 300
TAB_HEIGHT = 420      # px: every tab of the live panel scrolls inside a box of this height
CONSOLE_HEIGHT = 300  # px


def latest_job(jobs: list[JobSummary], engine: str) -> JobSummary | None:
    mine = [j for j in jobs if j.kind == engine]
    return mine[-1] if mine else None


def show(engine: str) -> None:
    icon, title = ICONS[engine], t(TITLE_KEYS[engine])
    rt = page_setup(title, icon)
    st.title(f"{icon} {title}")
    mode = engine_mode(engine, rt.settings, offline=False)
    st.caption(t(DESCRIPTION_KEYS[engine]) + " "
               + t("engine.reasons_llm" if mode == "llm" else "engine.reasons_offline"))
    if not rt.db.ok:
        return
    run = run_picker(rt, key=f"{engine}_run", kind="analysis", label=t("engine.run"))
    if run is None:
        st.info(t("engine.no_run"))
        return
    jobs = job_summaries(rt.db, run.id)
    job = latest_job(jobs, engine)
    controls(rt, run, job, engine)
    outcome_notice(run)
    budget_badge(rt, run)
    if job is None:
        st.markdown(run_header(run))
        st.caption(t("engine.not_in_run"))
        return
    live_state(engine, run.id, job.id, (run.status, job.id))
    st.subheader(t("engine.live_console"))
    console(engine, run)
    st.subheader(t("engine.llm_usage"))
    st.caption(usage_line(rt, run.id, role=ENGINES[engine].llm_role))
    frame = llm_calls_frame(rt.db, run_id=run.id, role=ENGINES[engine].llm_role)
    if frame.empty:
        st.caption(t("engine.no_llm_calls_offline" if run.mode == "offline" else "engine.no_llm_calls"))
    else:
        st.dataframe(usage_by_model(frame), hide_index=True, width="stretch")


def controls(rt, run: RunView, job: JobSummary | None, engine: str) -> None:
    sup = rt.supervisor
    running = job is not None and job.status in JobState.OPEN
    unlocked = admin_unlocked(rt, f"{engine}_controls")  # before the buttons: they wait for the password
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button(t("engine.stop"), key=f"{engine}_stop", disabled=sup is None or not running or not unlocked):
        status = sup.cancel_job(job.id)
        st.toast(t("engine.stop_toast", engine=t(TITLE_KEYS[engine]), status=status_label(status)))
        st.rerun()
    label = t("engine.rerun") if job is not None else t("engine.start")
    if c2.button(label, key=f"{engine}_rerun", disabled=sup is None or running or not unlocked):
        if allow_run_start(rt):
            new_id = rerun_engine(sup, run.id, engine)
            count_run_start()
            st.toast(t("engine.queued", job_id=new_id))
            st.rerun()


def run_header(run: RunView) -> str:
    mode = t("engine.mode_offline") if run.mode == "offline" else t("engine.mode_llm") if run.mode == "llm" else run.mode
    return t("engine.run_header", run_id=run.id, status=badge(run.status), topic=run.topic[:60], mode=mode)


@st.fragment(run_every=2)
def live_state(engine: str, run_id: str, job_id: str, seen: tuple | None = None) -> None:
    render_state(engine, run_id, job_id, seen)


@dataclass(frozen=True, eq=False)  # holds DataFrames: compared by what it was read at, progress.stamp
class LivePanel:
    """What the live panel shows: the job's light row, read every poll, and its progress (checkpoint,
    result, sources) with the tables built from it, read again only when the job's stamp changed."""
    job: JobSummary
    progress: EngineProgress
    paragraphs: pd.DataFrame | None
    sources: pd.DataFrame | None


def _tables(progress: EngineProgress) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    paragraphs = pd.DataFrame([{"#": p.index + 1, "paragraph": p.title, "stage": p.stage,
                                "reflections": p.reflections, "sources": p.n_sources}
                               for p in progress.paragraphs]) if progress.paragraphs else None
    sources = pd.DataFrame([{"n": s.n, "title": s.document.title or s.document.content[:40],
                             "platform": s.document.platform, "published": s.document.published,
                             "likes": s.document.likes, "comments": s.document.comments,
                             "shares": s.document.shares, "sentiment": s.document.sentiment,
                             "url": s.document.url} for s in progress.sources]) if progress.sources else None
    return paragraphs, sources


def poll_live(db, engine: str, job_id: str, cache: MutableMapping) -> LivePanel | None:
    """One poll of the live panel's data: the job's light row, and its progress from `cache` (the
    session's, one entry per engine page) unless the job's stamp changed since it was read; then
    the checkpoint and result are read again, and of the sources only those stored since."""
    job = get_job_summary(db, job_id)
    if job is None:
        return None
    key = f"engine_live_{engine}"
    kept = cache.get(key)
    if kept is not None and kept.job.id != job_id:
        kept = None
    if kept is not None and kept.progress.stamp == job.stamp:
        panel = LivePanel(job, kept.progress, kept.paragraphs, kept.sources)
    else:  # changed: the checkpoint and result again, and the sources stored since the last read
        progress = (load_engine_progress(db, job_id, engine, kept.progress if kept else None)
                    or EngineProgress(stamp=job.stamp))
        panel = LivePanel(job, progress, *_tables(progress))
    cache[key] = panel
    return panel


def stale(db, run: RunView | None, engine: str, seen: tuple | None) -> bool:
    """Whether the page around the panel was built from an older state: the run's status, or the
    engine's newest job in the run, is not what it showed (`seen` = (run status, job id))."""
    if seen is None or run is None:
        return False
    newest = latest_job(job_summaries(db, run.id), engine)
    return (run.status, newest.id if newest else None) != tuple(seen)


def job_line(job: JobSummary) -> str:
    parts = [f"{badge(job.status)} **{job.name}**", t("engine.attempt", n=job.attempt, of=job.max_attempts),
             t("engine.started", time=fmt_time(job.started_at))]
    if job.finished_at and job.started_at:
        parts.append(fmt_duration((job.finished_at - job.started_at).total_seconds()))
    if job.stalled:
        parts.append(f":orange[{t('engine.stalled')}]")
    return " · ".join(parts)


def ending_notice(job: JobSummary, progress: EngineProgress) -> None:
    """How a cancelled engine ended, in plain words: all its paragraphs written, or how many."""
    if job.status != JobState.CANCELLED or not progress.paragraphs:
        return
    done, total = sum(p.done for p in progress.paragraphs), len(progress.paragraphs)
    if done == total:
        st.info(t("engine.cancelled_all_done", n=total), icon="✅")
    else:
        st.warning(t("engine.cancelled_partial", done=done, total=total))


def render_state(engine: str, run_id: str, job_id: str, seen: tuple | None = None) -> None:
    """Body of the live panel: the run's header and the job's state (one read), paragraph progress,
    the report as it forms, sources and media."""
    rt = get_runtime()
    run = get_run(rt.db, run_id)
    panel = poll_live(rt.db, engine, job_id, st.session_state)
    if panel is None or panel.job.run_id != run_id:
        st.caption(t("engine.job_gone"))
        return
    if stale(rt.db, run, engine, seen):
        st.rerun()  # the whole page: the picker and the buttons follow the same state as this panel
    job, progress = panel.job, panel.progress
    if run is not None:
        st.markdown(run_header(run))
    st.markdown(job_line(job))
    st.progress(min(1.0, max(0.0, job.progress)), text=show_msg(job.message) or None)
    if job.error:
        st.error(job.error)
    ending_notice(job, progress)
    previews = [(s.n, s.media) for s in progress.sources if s.media is not None]
    labels = [t("engine.tab_paragraphs", n=len(progress.paragraphs)), t("engine.tab_report"),
              t("engine.tab_sources", n=len(progress.sources))]
    if previews:
        labels.append(t("engine.tab_media", n=len(previews)))
    tabs = st.tabs(labels)
    with tabs[0], st.container(height=TAB_HEIGHT, border=False):
        if panel.paragraphs is not None:
            table = panel.paragraphs.assign(stage=[t(STAGE_KEYS[s]) if s in STAGE_KEYS else s
                                                   for s in panel.paragraphs["stage"]])
            st.dataframe(table, hide_index=True, width="stretch", column_config={
                "paragraph": st.column_config.TextColumn(t("engine.col_paragraph")),
                "stage": st.column_config.TextColumn(t("engine.col_stage")),
                "reflections": st.column_config.NumberColumn(t("engine.col_reflections")),
                "sources": st.column_config.NumberColumn(t("engine.col_sources"))})
        else:
            st.caption(t("engine.planning") if job.status == JobState.RUNNING else t("engine.nothing_yet"))
    with tabs[1], st.container(height=TAB_HEIGHT, border=False):
        if progress.report_md:
            st.markdown(progress.report_md)
        elif progress.paragraphs:
            for p in progress.paragraphs:
                st.markdown(f"#### {p.title}\n\n{p.summary or '_…_'}")
        else:
            st.caption(t("engine.planning") if job.status == JobState.RUNNING else t("engine.nothing_yet"))
        for err in progress.search_errors[-5:]:
            st.warning(t("engine.search_failed", error=err))
    with tabs[2], st.container(height=TAB_HEIGHT, border=False):
        if panel.sources is not None:
            st.dataframe(panel.sources, hide_index=True, width="stretch", column_config={
                "title": st.column_config.TextColumn(t("engine.col_title")),
                "platform": st.column_config.TextColumn(t("engine.col_platform")),
                "published": st.column_config.DatetimeColumn(t("engine.col_published")),
                "likes": st.column_config.NumberColumn(t("engine.col_likes")),
                "comments": st.column_config.NumberColumn(t("engine.col_comments")),
                "shares": st.column_config.NumberColumn(t("engine.col_shares")),
                "sentiment": st.column_config.NumberColumn(t("engine.col_sentiment")),
                "url": st.column_config.LinkColumn(t("engine.col_url"))})
        else:
            st.caption(t("engine.no_sources"))
    if previews:
        with tabs[3], st.container(height=TAB_HEIGHT, border=False):
            st.caption(t("engine.media_note"))
            st.html(gallery_html(previews, video_label=t("engine.video")))


@st.fragment(run_every=2)
def console(engine: str, run: RunView) -> None:
    render_console(engine, run)


def render_console(engine: str, run: RunView) -> None:
    """This engine's log lines for this run, read incrementally by byte offset, in a fixed-height box."""
    rt = get_runtime()
    key = f"console_{engine}"
    state = st.session_state.get(key)
    path = rt.settings.log_dir / f"{engine}.log"
    if not state or state["run_id"] != run.id:
        tail = LogTail(path)
        tail.seek_back(2 * 2**20)  # recent history only: the first view must not read a huge file whole
        state = {"run_id": run.id, "tail": tail, "lines": deque(maxlen=CONSOLE_LINES)}
        st.session_state[key] = state
    for line in state["tail"].read_lines():
        if run.id in line or (run.trace_id and run.trace_id in line):
            state["lines"].append(line)
    if state["lines"]:
        st.code("\n".join(state["lines"]), language=None, height=CONSOLE_HEIGHT)
    else:
        with st.container(height=CONSOLE_HEIGHT, border=True):
            st.caption(t("engine.no_log_lines", file=path.name))
