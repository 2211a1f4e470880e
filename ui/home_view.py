"""Home's panels: the first-start panel, the start form, system health, and the live runs panel.

The live runs panel is one fragment: the current run and the recent runs come from the same query
(`list_runs`) on every refresh, so the two can never disagree ("running · 0.3 s" in Recent runs a
minute after the current run completed). When the current run has ended it says what happened
(completed, with problems, insufficient data, failed, report failed, cancelled, interrupted: and why)
and links to the pages that show it, opening that run there (`?run=<id>`, read by ui.widgets.run_picker).
"""
from __future__ import annotations

import streamlit as st

from core.analysis import MAX_TOPIC_CHARS, TopicError, analyse_anyway, start_analysis
from core.console.health import run_checks
from core.corpus.demo import DEMO_TOPICS
from core.research.coverage import Coverage
from core.research.names import ENGINE_NAMES
from core.runtime import Runtime
from core.work.runs import JobSummary, RunView, job_summaries, list_runs
from core.work.states import JobState, RunState

from . import plan_review
from .access import allow_run_start, count_run_start, has_control
from .budget_fields import budget_badge, budget_inputs
from .cached import cached_corpus_stats
from .i18n import show, status_label, t
from .report_templates import home_choices
from .widgets import (RUN_PARAM, admin_unlocked, arrow_table, badge, fmt_duration, fmt_time, live_event_feed,
                      mode_caption, offline_effective, outcome_notice, outcome_short, usage_line)

ENGINES = tuple(ENGINE_NAMES)
REPORT_TYPES = ("auto", "brand reputation", "market competition", "routine monitoring", "policy/industry",
                "social hot event", "crisis response")
PAGES = {"report": "pages/5_Report.py", "query": "pages/1_Query_Engine.py", "media": "pages/2_Media_Engine.py",
         "insight": "pages/3_Insight_Engine.py", "forum": "pages/4_Forum.py"}
DATA_PAGE = "pages/7_Data.py"
RECENT = 10
TOPIC_EXAMPLES = "武汉大学舆情, 新能源汽车价格战"  # data: topics as analysts write them
DEMO_RUN_KEY = "home_demo_run"


def _word(group: str, value: str) -> str:
    """A run's kind or mode in words (`analysis` → 分析); a value the catalogue does not know stays as it is."""
    text = t(f"home.{group}_{value}")
    return value if text.startswith("⟦") else text


def _report_type_label(value: str) -> str:
    return t(f"home.report_type_{value.replace('/', '_').replace(' ', '_')}")


# ------------------------------------------------------------------------------------------ header

def header(rt: Runtime) -> None:
    st.title("🐟 Shoal")
    st.caption(t("home.tagline") + " " + mode_caption(rt))


def corpus_empty(rt: Runtime) -> bool:
    return bool(rt.db.ok and cached_corpus_stats(rt).total == 0)


def first_start_panel(rt: Runtime) -> None:
    """An empty corpus: the one button that fills it (demo data, generated as a supervisor job with
    progress on the Data page), or the way to import real posts."""
    with st.container(border=True):
        st.markdown(t("home.first_start_title"))
        st.caption(t("home.first_start_body"))
        allowed = has_control(rt)
        started = st.session_state.get(DEMO_RUN_KEY)
        if st.button(t("home.demo_button"), key="home_demo", type="primary",
                     disabled=not allowed or rt.supervisor is None,
                     help=None if allowed else t("home.needs_password_below")):
            try:
                from core.corpus.data_jobs import start_demo_data  # the Data page's job; loaded when asked for

                started = st.session_state[DEMO_RUN_KEY] = start_demo_data(rt.supervisor, rt.settings)
            except Exception as exc:  # noqa: BLE001 - the reader sees why, the page stays up
                st.error(t("home.demo_failed", error=str(exc)[:300]))
        if started:
            st.success(t("home.demo_started", run_id=started))
        st.page_link(DATA_PAGE, label=t("home.data_link"), icon="🗄️")


# ------------------------------------------------------------------------------------------ start form

def start_form(rt: Runtime) -> None:
    st.subheader(t("home.start_title"))
    # Before the form: the password box (or why control is off) comes first, and Start waits for it.
    can_start = admin_unlocked(rt, "start")
    with st.form("start_form"):
        topic = st.text_input(t("home.topic"), placeholder=t("home.topic_placeholder", examples=TOPIC_EXAMPLES),
                              max_chars=MAX_TOPIC_CHARS)
        engines = st.multiselect(t("home.engines"), options=list(ENGINES), default=list(ENGINES),
                                 format_func=lambda k: t(f"home.engine_choice_{k}"))
        c1, c2, c3 = st.columns(3)
        paragraphs = c1.number_input(t("home.paragraphs"), 1, 12, rt.settings["SHOAL_PARAGRAPHS"])
        reflections = c2.number_input(t("home.reflections"), 0, 5, rt.settings["SHOAL_REFLECTIONS"])
        # labels as options, not format_func: AppTest cannot click a form whose selectbox formats its options
        types = {_report_type_label(v): v for v in REPORT_TYPES} | home_choices(rt)  # + users' templates
        report_type = types.get(c3.selectbox(t("home.report_type"), list(types)), "auto")
        offline = st.checkbox(t("home.offline"), value=offline_effective(rt))
        # (the label avoids the word "topic": browser tests find the topic field by its label)
        force = st.checkbox(t("home.force", n=rt.settings["SHOAL_MIN_SOURCES"]), value=False)
        max_tokens, max_cost = budget_inputs(rt)  # the run's caps (ui.budget_fields)
        submitted = st.form_submit_button(t("home.start"), type="primary", disabled=not rt.ok or not can_start)
        review = st.form_submit_button(t("plan_review.review"), disabled=not rt.ok or not can_start)
    st.caption(t("home.demo_topics", topics=" · ".join(DEMO_TOPICS)))
    # Optional: the engines' planned paragraphs, editable, then start with them or skip (ui/plan_review.py).
    if review and can_start:
        plan_review.prepare(rt, topic, engines, paragraphs=int(paragraphs), offline=offline)
    review_box = st.empty()
    with review_box.container():
        decision = plan_review.panel(can_start)
    if (submitted or decision is not None) and can_start and allow_run_start(rt):
        try:
            run_id = start_analysis(rt.supervisor, rt.settings, topic, engines, paragraphs=int(paragraphs),
                                    reflections=int(reflections), report_type=report_type, offline=offline,
                                    force_report=force, plan=decision.plan if decision else None,
                                    max_tokens=max_tokens, max_cost=max_cost)
        except (TopicError, ValueError) as exc:
            st.error(show(exc.msg) if getattr(exc, "msg", None) else show(exc.args[0]) if exc.args else str(exc))
        else:
            plan_review.clear()
            review_box.empty()
            count_run_start()
            st.success(t("home.queued", run_id=run_id, engines=", ".join(engines), topic=topic.strip()[:60]))


# ------------------------------------------------------------------------------------------ health

def health_body(rt: Runtime) -> None:
    for r in run_checks(rt.settings, rt.db):
        st.markdown(f"{badge(r.status)} **{show(r.label)}** — {show(r.text)}")
    if rt.supervisor is not None:
        s = rt.supervisor.status()
        st.caption(t("home.supervisor", worker=s.worker_id, active=s.active_jobs, max=s.max_workers))
    else:
        st.caption(t("home.no_supervisor"))


# ------------------------------------------------------------------------------------------ runs

def coverage_panel(rt: Runtime, run: RunView) -> None:
    """How much of the topic the data covers; on an insufficient run, why and the way out."""
    coverage = Coverage.from_dict(run.params.get("coverage"))
    if coverage is None:
        return
    plats = ", ".join(f"{k} {v}" for k, v in coverage.by_platform.items()) or t("home.coverage_none")
    web = t("home.coverage_web", n=coverage.web_results) if coverage.web_searched else ""
    st.caption(t("home.coverage", n=coverage.matching_posts, platforms=plats, web=web, needed=coverage.threshold))
    if run.status == RunState.INSUFFICIENT_DATA:
        st.warning(show(coverage.notice()), icon="📉")
        allowed = has_control(rt)  # the password box is above the start form
        if coverage.sources and st.button(t("home.anyway"), key=f"anyway_{run.id}", disabled=not allowed,
                                          help=None if allowed else t("home.needs_password")) \
                and allow_run_start(rt):
            try:
                analyse_anyway(rt.supervisor, run.id)
            except (KeyError, ValueError) as exc:
                st.error(str(exc))
            else:
                count_run_start()
                st.success(t("home.anyway_started"))


def _why(jobs: list[JobSummary], statuses: tuple[str, ...]) -> str:
    """The jobs that ended in one of `statuses`, each with its message (how it ended) or error."""
    lines = [f"- **{j.name}**: {show(j.message) or j.error or status_label(j.status)}"
             for j in jobs if j.status in statuses]
    return "\n".join(lines)


def outcome_panel(run: RunView, jobs: list[JobSummary]) -> None:
    """What happened to a run that has ended, and why."""
    status = run.status
    if status == RunState.COMPLETED:
        st.success(t("home.outcome_completed", duration=fmt_duration(run.duration_s)), icon="✅")
    elif status == RunState.COMPLETED_DEGRADED:
        st.warning(t("home.outcome_degraded"), icon="⚠️")
    elif status == RunState.REPORT_FAILED:
        st.error(t("home.outcome_report_failed"), icon="📝")
    elif status == RunState.INSUFFICIENT_DATA:
        st.warning(t("home.outcome_insufficient"), icon="📉")
    elif status == RunState.FAILED:
        why = _why(jobs, (JobState.FAILED,))
        st.error(t("home.outcome_failed") + ("\n\n" + why if why else ""), icon="❌")
    elif status == RunState.CANCELLED:
        why = _why(jobs, (JobState.CANCELLED,))
        st.info(t("home.outcome_cancelled") + ("\n\n" + why if why else ""), icon="⏹️")
    elif status == RunState.INTERRUPTED:
        st.warning(t("home.outcome_interrupted", run_id=run.id), icon="⏸️")
    outcome_notice(run)  # the degraded run's reasons, the failed report's fix


def run_links(run: RunView) -> None:
    """Links to the pages that show this run, each opening it there."""
    if run.kind != "analysis":
        return
    engines = [e for e in ENGINES if e in (run.params.get("engines") or ENGINES)]
    keys = ["report", *engines, "forum"]
    cols = st.columns(len(keys))
    for col, key in zip(cols, keys):
        with col:
            st.page_link(PAGES[key], label=t(f"home.link_{key}"), query_params={RUN_PARAM: run.id})


def current_run(rt: Runtime, run: RunView) -> None:
    st.markdown(t("home.run_line", badge=badge(run.status), topic=run.topic or _word("kind", run.kind), run_id=run.id,
                  mode=_word("mode", run.mode), started=fmt_time(run.started_at), duration=fmt_duration(run.duration_s),
                  trace=run.trace_id))
    st.caption(usage_line(rt, run.id))
    budget_badge(rt, run)
    jobs = job_summaries(rt.db, run.id)
    if run.status not in RunState.OPEN:
        outcome_panel(run, jobs)
    coverage_panel(rt, run)
    run_links(run)
    cols = st.columns(max(1, min(len(jobs), 6)))
    for col, job in zip(cols, jobs[:6]):
        with col:
            st.markdown(f"**{job.name}**  \n{badge(job.status)}")
            st.progress(min(1.0, max(0.0, job.progress)), text=show(job.message) or None)


def recent_runs(runs: list[RunView]) -> None:
    c = {name: t(f"home.col_{name}") for name in ("run", "status", "kind", "topic", "mode", "created", "duration",
                                                  "problems")}
    # an Arrow table (ui.widgets.arrow_table), sent whole (lazy=False; ten rows): Home's first run imports no pandas
    st.dataframe(arrow_table([{c["run"]: r.id, c["status"]: status_label(r.status), c["kind"]: _word("kind", r.kind),
                               c["topic"]: r.topic[:80], c["mode"]: _word("mode", r.mode),
                               c["created"]: fmt_time(r.created_at), c["duration"]: fmt_duration(r.duration_s),
                               c["problems"]: outcome_short(r)} for r in runs]),
                 hide_index=True, width="stretch", lazy=False)


def runs_body(rt: Runtime) -> None:
    """The current run and the recent runs, from one query: what the live fragment redraws."""
    st.subheader(t("home.current_run"))
    if not rt.db.ok:
        st.caption(t("home.db_down"))
        return
    runs = list_runs(rt.db, limit=RECENT)
    # the current run is the newest analysis (or probe); demo data and imports are runs too, shown in
    # Recent runs and on the Data page, but they are not what "current run" asks about
    current = next((r for r in runs if r.kind != "data"), None)
    if current is None:
        st.caption(t("common.no_runs"))
    else:
        current_run(rt, current)
    st.subheader(t("home.recent_runs"))
    if runs:
        recent_runs(runs)
    else:
        st.caption(t("common.no_runs"))


def render(rt: Runtime) -> None:
    header(rt)
    if corpus_empty(rt):
        first_start_panel(rt)
    left, right = st.columns([3, 2])
    with left:
        start_form(rt)
    with right:
        st.subheader(t("home.health"))

        @st.fragment(run_every=15)  # seconds as a number: a string makes Streamlit import pandas to parse it
        def health_panel():
            health_body(rt)

        health_panel()

    @st.fragment(run_every=2)  # a number, not "2s": Streamlit parses a string with pandas
    def runs_panel():
        runs_body(rt)

    runs_panel()
    st.subheader(t("home.live_events"))
    live_event_feed("home_events")
