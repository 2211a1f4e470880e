"""The shared body of the three engine pages (one design, three configurations)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import MutableMapping

import pandas as pd
import streamlit as st

from core.work.states import JobState
from ui.i18n import show as show_msg  # (this module has its own show(engine))
from core.analysis import rerun_engine
from core.research.engine import ENGINES, engine_mode
from core.research.results import EngineProgress, load_engine_progress
from core.infra.logtail import LogTail
from core.work.runs import JobSummary, RunView, get_job_summary, job_summaries
from core.console.usage import llm_calls_frame, usage_by_model

from .runtime import get_runtime
from .access import allow_run_start, count_run_start
from .widgets import (admin_unlocked, badge, fmt_duration, fmt_time, outcome_notice, page_setup, run_picker,
                      usage_line)

DESCRIPTIONS = {
    "query": ("🔎", "News and web search through a Tavily-compatible API, or the local corpus offline."),
    "media": ("🎞️", "Multimodal web search (pages, images, video) through a Bocha-compatible API, "
              "or the video and image platforms of the local corpus offline."),
    "insight": ("🧠", "Your own social-media database: hot content, topic search, comments, "
                "sentiment and keyword expansion."),
}
CONSOLE_LINES = 300


def latest_job(jobs: list[JobSummary], engine: str) -> JobSummary | None:
    mine = [j for j in jobs if j.kind == engine]
    return mine[-1] if mine else None


def show(engine: str) -> None:
    config = ENGINES[engine]
    icon, description = DESCRIPTIONS[engine]
    rt = page_setup(config.title, icon)
    st.title(f"{icon} {config.title}")
    mode = engine_mode(engine, rt.settings, offline=False)
    st.caption(f"{description} This engine reasons with **{'an LLM' if mode == 'llm' else 'the offline analyst'}**.")
    if not rt.db.ok:
        return
    run = run_picker(rt, key=f"{engine}_run", kind="analysis")
    if run is None:
        st.info("No analysis has run yet. Start one on the Home page.")
        return
    jobs = job_summaries(rt.db, run.id)
    job = latest_job(jobs, engine)
    controls(rt, run, job, engine)
    if job is None:
        st.caption("This engine was not part of this run. Start it above to add it.")
        return
    live_state(engine, run.id, job.id)
    st.subheader("Live console")
    console(engine, run)
    st.subheader("LLM usage")
    st.caption(usage_line(rt, run.id, role=config.llm_role))
    frame = llm_calls_frame(rt.db, run_id=run.id, role=config.llm_role)
    if frame.empty:
        st.caption("No LLM calls by this engine in this run" + (" (offline analysis)." if run.mode == "offline" else "."))
    else:
        st.dataframe(usage_by_model(frame), hide_index=True, width="stretch")


def controls(rt, run: RunView, job: JobSummary | None, engine: str) -> None:
    sup = rt.supervisor
    running = job is not None and job.status in JobState.OPEN
    unlocked = admin_unlocked(rt, f"{engine}_controls")  # before the buttons: they wait for the password
    c1, c2, c3 = st.columns([1, 1, 4])
    if c1.button("Stop", key=f"{engine}_stop", disabled=sup is None or not running or not unlocked):
        status = sup.cancel_job(job.id)
        st.toast(f"{ENGINES[engine].title}: {status}")
        st.rerun()
    label = "Re-run" if job is not None else "Start"
    if c2.button(label, key=f"{engine}_rerun", disabled=sup is None or running or not unlocked):
        if allow_run_start(rt):
            new_id = rerun_engine(sup, run.id, engine)
            count_run_start()
            st.toast(f"Queued {new_id}")
            st.rerun()
    c3.markdown(f"Run `{run.id}` · {badge(run.status)} · {run.topic[:60]} · mode **{run.mode}**")
    outcome_notice(run)


@st.fragment(run_every=2)
def live_state(engine: str, run_id: str, job_id: str) -> None:
    render_state(engine, run_id, job_id)


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


def render_state(engine: str, run_id: str, job_id: str) -> None:
    """Body of the live panel: job state, paragraph progress, the report as it forms, sources."""
    rt = get_runtime()
    panel = poll_live(rt.db, engine, job_id, st.session_state)
    if panel is None or panel.job.run_id != run_id:
        st.caption("The job is gone.")
        return
    job, progress = panel.job, panel.progress
    st.markdown(f"{badge(job.status)} **{job.name}** · attempt {job.attempt}/{job.max_attempts} · "
                f"started {fmt_time(job.started_at)} · "
                f"{fmt_duration((job.finished_at - job.started_at).total_seconds()) if job.finished_at and job.started_at else ''}"
                + (" · :orange[stalled]" if job.stalled else ""))
    st.progress(min(1.0, max(0.0, job.progress)), text=show_msg(job.message) or None)  # a Msg
    if job.error:
        st.error(job.error)
    if panel.paragraphs is not None:
        st.dataframe(panel.paragraphs, hide_index=True, width="stretch")
    tab_report, tab_sources = st.tabs(["Report", "Sources"])
    with tab_report:
        if progress.report_md:
            st.markdown(progress.report_md)
        elif progress.paragraphs:
            for p in progress.paragraphs:
                st.markdown(f"#### {p.title}\n\n{p.summary or '_…_'}")
        else:
            st.caption("Planning the report structure…" if job.status == "running" else "Nothing yet.")
        for err in progress.search_errors[-5:]:
            st.warning(f"Search failed: {err}")
    with tab_sources:
        if panel.sources is not None:
            st.dataframe(panel.sources, hide_index=True, width="stretch",
                         column_config={"url": st.column_config.LinkColumn("url")})
        else:
            st.caption("No sources yet.")


@st.fragment(run_every=2)
def console(engine: str, run: RunView) -> None:
    render_console(engine, run)


def render_console(engine: str, run: RunView) -> None:
    """This engine's log lines for this run, read incrementally by byte offset."""
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
        st.code("\n".join(state["lines"]), language=None, height=300)
    else:
        st.caption(f"No log lines for this run yet ({path.name}).")
