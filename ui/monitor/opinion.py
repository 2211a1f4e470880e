"""Monitor › Runs & jobs: what the chosen run costs (LLM calls, tokens, cost, latency) beside what it
finds (each engine's sentiment and platform mix, paragraph by paragraph: core.console.opinion)."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.console.opinion import SENTIMENTS, RunOpinion, fold_platforms, run_ops, run_opinion
from core.runtime import Runtime
from core.work.runs import RunView

from ui.i18n import fmt_time, t
from ui.monitor.common import _chart

CHART_PLATFORMS = 5  # platforms a chart names; the rest are "other"
COLORS = {"positive": "#2e7d32", "neutral": "#9e9e9e", "negative": "#c62828"}


def sentiment_frame(run: RunOpinion, engine: str) -> pd.DataFrame:
    """One row per (paragraph step, sentiment): the share after that paragraph."""
    rows = []
    for e in run.engines:
        if e.engine != engine:
            continue
        for p in e.points:
            for s in SENTIMENTS:
                rows.append({"step": p.step, "paragraph": p.title or str(p.paragraph + 1),
                             "sentiment": t(f"opinion.{s}"), "key": s, "share": p.share(s), "scored": p.scored,
                             "at": fmt_time(p.at) if p.at else "—"})
    return pd.DataFrame(rows, columns=["step", "paragraph", "sentiment", "key", "share", "scored", "at"])


def platform_frame(run: RunOpinion, engine: str) -> pd.DataFrame:
    """One row per (paragraph step, platform): the share after that paragraph, the top few by name.
    The platforms named are those of the engine's latest point (so a platform keeps its name across steps)."""
    rows = []
    for e in run.engines:
        if e.engine != engine or not e.points:
            continue
        named = {name for name, _ in fold_platforms(e.latest.platforms, CHART_PLATFORMS)} - {"other"}
        for p in e.points:
            shares: dict[str, float] = {}
            for name, share in p.platforms:
                key = name if name in named else t("opinion.other")
                shares[key] = shares.get(key, 0.0) + share
            for name, share in shares.items():
                rows.append({"step": p.step, "paragraph": p.title or str(p.paragraph + 1), "platform": name,
                             "share": share, "sources": p.sources, "at": fmt_time(p.at) if p.at else "—"})
    return pd.DataFrame(rows, columns=["step", "paragraph", "platform", "share", "sources", "at"])


def _area(frame: pd.DataFrame, color: str, title: str, scale: alt.Scale | None = None) -> alt.Chart:
    return (alt.Chart(frame, title=title).mark_area()
            .encode(x=alt.X("step:Q", title=t("opinion.axis_paragraph"), axis=alt.Axis(tickMinStep=1, format="d")),
                    y=alt.Y("share:Q", stack="zero", title=t("opinion.axis_share"), axis=alt.Axis(format="%")),
                    color=alt.Color(f"{color}:N", title=t(f"opinion.legend_{color}"),
                                    **({"scale": scale} if scale is not None else {})),
                    tooltip=[alt.Tooltip("step:Q", title=t("opinion.axis_paragraph")),
                             alt.Tooltip("paragraph:N", title=t("opinion.tip_title")),
                             alt.Tooltip("at:N", title=t("opinion.tip_at")),
                             alt.Tooltip(f"{color}:N", title=t(f"opinion.legend_{color}")),
                             alt.Tooltip("share:Q", format=".1%", title=t("opinion.axis_share"))]))


def show_ops(rt: Runtime, run: RunView) -> None:
    ops = run_ops(rt.db, run.id, getattr(rt, "prices", None))
    if ops.error:
        st.error(t("monitor.read_error", error=ops.error))
        return
    c = st.columns(4)
    c[0].metric(t("opinion.ops_calls"), f"{ops.calls:,}")
    c[1].metric(t("opinion.ops_tokens"), f"{ops.tokens:,}")
    c[2].metric(t("opinion.ops_cost"), t("opinion.unpriced") if ops.cost_usd is None else f"${ops.cost_usd:,.4f}")
    c[3].metric(t("opinion.ops_p95"), "—" if ops.p95_ms is None else f"{ops.p95_ms / 1000:,.1f} s")
    if ops.p50_ms is not None:
        st.caption(t("opinion.ops_latency", p50=f"{ops.p50_ms / 1000:,.1f}", p95=f"{ops.p95_ms / 1000:,.1f}"))


def show_run_opinion(rt: Runtime, run: RunView) -> None:
    """The run's costs, then per engine its sentiment mix and platform mix over its paragraphs."""
    st.subheader(t("opinion.title"))
    show_ops(rt, run)
    try:
        found = run_opinion(rt.db, run.id, run.topic)
    except Exception as exc:  # noqa: BLE001 - the rest of the tab still shows
        st.error(t("monitor.read_error", error=f"{type(exc).__name__}: {exc}"[:300]))
        return
    engines = [e for e in found.engines if e.points]
    if not engines:
        st.caption(t("opinion.none_yet"))
        return
    sentiment_scale = alt.Scale(domain=[t(f"opinion.{s}") for s in SENTIMENTS],
                                range=[COLORS[s] for s in SENTIMENTS])
    for e in engines:
        last = e.latest
        st.markdown(t("opinion.engine_line", engine=e.engine, paragraphs=len(e.points), sources=last.sources,
                      scored=last.scored, negative=f"{last.negative:.0%}"))
        c1, c2 = st.columns(2)
        with c1:
            _chart(_area(sentiment_frame(found, e.engine), "sentiment",
                         t("opinion.sentiment_chart", engine=e.engine), sentiment_scale), height=220)
        with c2:
            _chart(_area(platform_frame(found, e.engine), "platform",
                         t("opinion.platform_chart", engine=e.engine)), height=220)
    st.caption(t("opinion.note"))
