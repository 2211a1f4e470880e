"""The plan review on Home: before a run, each engine's planned paragraphs in an editable table.

Home's start form has "Review the plan first" beside Start. It computes the plan the engines would make
(core.research.plan_preview) and keeps it in the session; `panel` shows it, one table per engine (title
and intent, rows can be edited, added and removed), and returns the analyst's decision: start with the
edited plan, or start without one (skip). Home then starts the run with its form's values and
`decision.plan` (core.analysis.start_analysis). Start on the form never waits for a review.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.research.plan import MAX_BRIEF_CHARS, MAX_TITLE_CHARS, EnginePlan, PlanError, RunPlan, make_paragraphs
from core.runtime import Runtime

from .i18n import show, t

PREVIEW_KEY = "plan_review_preview"
GENERATION_KEY = "plan_review_generation"  # each new preview gets fresh tables (the editors' keys change)
COLUMNS = ("title", "intent")


@dataclass(frozen=True)
class ReviewDecision:
    plan: RunPlan | None  # the reviewed plan to start the run with; None: start without one (review skipped)


def prepare(rt: Runtime, topic: str, engines, *, paragraphs: int, offline: bool) -> RunPlan | None:
    """Plan each engine's paragraphs for the form's topic and keep the plan for `panel`; None (and the
    reason on screen) when the topic or the choices are refused."""
    from core.analysis import TopicError
    from core.research.plan_preview import preview_plan

    try:
        with st.spinner(t("plan_review.planning")):
            preview = preview_plan(rt.db, rt.settings, topic, engines, paragraphs=paragraphs, offline=offline,
                                   events=rt.events)
    except (TopicError, ValueError) as exc:
        st.error(show(exc.args[0]) if exc.args else str(exc))
        return None
    keep(preview)
    return preview


def keep(preview: RunPlan) -> None:
    st.session_state[PREVIEW_KEY] = preview
    st.session_state[GENERATION_KEY] = int(st.session_state.get(GENERATION_KEY, 0)) + 1


def clear() -> None:
    """The review is over (the run started, or the analyst discarded it)."""
    st.session_state.pop(PREVIEW_KEY, None)


def editor_key(engine: str) -> str:
    return f"plan_review_{engine}_{st.session_state.get(GENERATION_KEY, 0)}"


def _cell(value) -> str:
    """An editor cell as text: a new row's empty cells come back as None or NaN."""
    return "" if value is None or value != value else str(value)


def _table(plan: EnginePlan):
    import pandas as pd  # only when a plan is shown: Home's first paint does not load pandas

    frame = pd.DataFrame([{"title": p.title, "intent": p.brief} for p in plan.paragraphs], columns=list(COLUMNS))
    return st.data_editor(
        frame, key=editor_key(plan.engine), num_rows="dynamic", hide_index=True, width="stretch",
        column_config={"title": st.column_config.TextColumn(t("plan_review.col_title"), required=True,
                                                            max_chars=MAX_TITLE_CHARS, width="medium"),
                       "intent": st.column_config.TextColumn(t("plan_review.col_intent"), max_chars=MAX_BRIEF_CHARS,
                                                             width="large")})


def _engine_section(plan: EnginePlan):
    """One engine's heading, how its plan was made, and its table (None: nothing to edit)."""
    st.markdown(f"**{t(f'home.engine_choice_{plan.engine}')}**")
    if plan.error:
        st.warning(t("plan_review.failed", error=plan.error[:300]), icon="⚠️")
        return None
    if plan.nothing_on_topic:
        st.info(t("plan_review.nothing_on_topic"), icon="📭")
        return None
    st.caption(t("plan_review.planned_llm" if plan.mode == "llm" else "plan_review.planned_offline",
                 sources=plan.sources,
                 provider=t("plan_review.provider_corpus") if plan.provider == "corpus" else plan.provider))
    return _table(plan)


def panel(can_start: bool) -> ReviewDecision | None:
    """The kept plan, editable; the analyst's decision when a start button was clicked, else None."""
    preview = st.session_state.get(PREVIEW_KEY)
    if not isinstance(preview, RunPlan):
        return None
    with st.container(border=True):
        st.markdown(t("plan_review.title", topic=preview.topic))
        st.caption(t("plan_review.help"))
        tables = {e.engine: table for e in preview.engines if (table := _engine_section(e)) is not None}
        c1, c2, c3 = st.columns(3)
        go = c1.button(t("plan_review.start"), key="plan_review_start", type="primary",
                       disabled=not can_start or not tables)
        skip = c2.button(t("plan_review.skip"), key="plan_review_skip", disabled=not can_start)
        if c3.button(t("plan_review.discard"), key="plan_review_discard"):
            clear()
            st.rerun()
        if skip:
            return ReviewDecision(None)
        if not go:
            return None
        try:
            plan = RunPlan(preview.topic, tuple(
                EnginePlan(engine, make_paragraphs(engine, [(_cell(r.title), _cell(r.intent))
                                                            for r in frame.itertuples(index=False)]))
                for engine, frame in tables.items()))
        except PlanError as exc:
            st.error(show(exc.msg) if exc.msg else str(exc))
            return None
    return ReviewDecision(plan)
