"""Shoal — start an analysis, see the current run, system health and recent runs."""
import streamlit as st

from core.analysis import MAX_TOPIC_CHARS, TopicError, analyse_anyway, start_analysis
from core.corpus.demo import DEMO_TOPICS
from core.console.health import run_checks
from core.work.jobs import INSUFFICIENT_DATA
from core.research.coverage import Coverage
from core.research.names import ENGINE_NAMES
from core.work.runs import job_summaries, list_runs
from ui.access import allow_run_start, count_run_start, has_control
from ui.cached import cached_corpus_stats
from ui.widgets import (admin_unlocked, badge, fmt_duration, fmt_time, live_event_feed, mode_caption, outcome_notice,
                        outcome_short, page_setup, usage_line)

ENGINES = {key: name.choice for key, name in ENGINE_NAMES.items()}
REPORT_TYPES = ["auto", "brand reputation", "market competition", "routine monitoring", "policy/industry",
                "social hot event", "crisis response"]

rt = page_setup("Home")
st.title("🐟 Shoal")
st.caption("Multi-agent public-opinion analysis: three research engines, a moderated forum, one report. "
           + mode_caption(rt))

left, right = st.columns([3, 2])
with left:
    st.subheader("Start an analysis")
    # Before the form: the password box (or why control is off) comes first, and Start waits for it.
    can_start = admin_unlocked(rt, "start")
    with st.form("start_form"):
        topic = st.text_input("Topic", placeholder="e.g. 武汉大学舆情, 新能源汽车价格战", max_chars=MAX_TOPIC_CHARS)
        engines = st.multiselect("Engines", options=list(ENGINES), default=list(ENGINES),
                                 format_func=ENGINES.get)
        c1, c2, c3 = st.columns(3)
        paragraphs = c1.number_input("Paragraphs", 1, 12, rt.settings["SHOAL_PARAGRAPHS"])
        reflections = c2.number_input("Reflections", 0, 5, rt.settings["SHOAL_REFLECTIONS"])
        report_type = c3.selectbox("Report type", REPORT_TYPES)
        offline = st.checkbox("Offline analysis (no LLM, no web search)", value=rt.settings["SHOAL_MODE"] == "offline")
        # (the label avoids the word "topic": browser tests find the topic field by its label)
        force = st.checkbox(f"Write a report even on thin data (fewer than {rt.settings['SHOAL_MIN_SOURCES']} "
                            "matching sources; it opens with a coverage warning)", value=False)
        submitted = st.form_submit_button("Start", type="primary", disabled=not rt.ok or not can_start)
    st.caption("Demo topics (after generating demo data on the Data page): " + " · ".join(DEMO_TOPICS))
    if rt.db.ok and cached_corpus_stats(rt).total == 0:
        st.warning("The local corpus is empty, so the Insight engine (and offline search) has nothing to analyse. "
                   "Generate demo data or import posts on the **Data** page.", icon="🗄️")
    if submitted and can_start and allow_run_start(rt):
        try:
            run_id = start_analysis(rt.supervisor, rt.settings, topic, engines, paragraphs=int(paragraphs),
                                    reflections=int(reflections), report_type=report_type, offline=offline,
                                    force_report=force)
        except (TopicError, ValueError) as exc:
            st.error(str(exc))
        else:
            count_run_start()
            st.success(f"Run `{run_id}` queued: {', '.join(engines)} on “{topic.strip()[:60]}”.")

with right:
    st.subheader("System health")

    @st.fragment(run_every=15)  # seconds as a number: a string makes Streamlit import pandas to parse it
    def health_panel():
        for r in run_checks(rt.settings, rt.db):
            st.markdown(f"{badge(r.status)} **{r.name}** — {r.detail}")
        if rt.supervisor is not None:
            s = rt.supervisor.status()
            st.caption(f"Supervisor {s.worker_id}: {s.active_jobs}/{s.max_workers} jobs running")
        else:
            st.caption("Supervisor not running.")

    health_panel()

st.subheader("Current run")


def coverage_panel(run) -> None:
    """How much of the topic the data covers; on an insufficient run, why and the way out."""
    coverage = Coverage.from_dict(run.params.get("coverage"))
    if coverage is None:
        return
    plats = ", ".join(f"{k} {v}" for k, v in coverage.by_platform.items()) or "none"
    web = f" · web results {coverage.web_results}" if coverage.web_searched else ""
    st.caption(f"Coverage: {coverage.matching_posts} posts about the topic ({plats}){web} · "
               f"needed {coverage.threshold}")
    if run.status == INSUFFICIENT_DATA:
        st.warning(run.error or coverage.message(False), icon="📉")
        allowed = has_control(rt)  # the password box is above the start form
        if coverage.sources and st.button("Write a report anyway", key=f"anyway_{run.id}", disabled=not allowed,
                                          help=None if allowed else "Needs the admin password (above).") \
                and allow_run_start(rt):
            try:
                analyse_anyway(rt.supervisor, run.id)
            except (KeyError, ValueError) as exc:
                st.error(str(exc))
            else:
                count_run_start()
                st.success("The engines are running on what matched; the report will open with a coverage warning.")


@st.fragment(run_every=2)  # a number, not "2s": Streamlit parses a string with pandas
def current_run_panel():
    if not rt.db.ok:
        st.caption("Unavailable while the database is down.")
        return
    runs = list_runs(rt.db, limit=1)
    if not runs:
        st.caption("No runs yet.")
        return
    run = runs[0]
    st.markdown(f"{badge(run.status)} **{run.topic or run.kind}** · run `{run.id}` · {run.mode} · "
                f"started {fmt_time(run.started_at)} · {fmt_duration(run.duration_s)} · trace `{run.trace_id}`")
    st.caption(usage_line(rt, run.id))
    outcome_notice(run)
    coverage_panel(run)
    jobs = job_summaries(rt.db, run.id)
    cols = st.columns(max(1, min(len(jobs), 6)))
    for col, job in zip(cols, jobs[:6]):
        with col:
            st.markdown(f"**{job.name}**  \n{badge(job.status)}")
            st.progress(min(1.0, max(0.0, job.progress)))


current_run_panel()

st.subheader("Live events")
live_event_feed("home_events")

st.subheader("Recent runs")
if rt.db.ok:
    recent = list_runs(rt.db, limit=10)
    if recent:
        import pandas as pd  # only with runs to show: a first start does not load pandas

        st.dataframe(pd.DataFrame([{"run": r.id, "status": r.status, "kind": r.kind, "topic": r.topic[:80],
                                    "mode": r.mode, "created": fmt_time(r.created_at),
                                    "duration": fmt_duration(r.duration_s), "problems": outcome_short(r)}
                                   for r in recent]),
                     hide_index=True, width="stretch")
    else:
        st.caption("No runs yet.")
