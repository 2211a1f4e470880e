"""The Data page's charts: posts by platform, and posts over time per platform in the reader's zone.

The counts are aggregated in the database (core.corpus.browse) and cached until a post is added (or
CHART_TTL_S passes, for imports that only update posts).
"""
from __future__ import annotations

from datetime import date

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import func, select

from core.corpus.browse import posts_by_platform, posts_per_day
from core.infra.clock import zone_name
from core.infra.db import Database
from core.infra.models import Post
from ui.i18n import t, zone

CHART_TTL_S = 10
MONTHLY_AFTER_DAYS = 400  # a longer span is drawn by month


def _newest_post(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.max(Post.id))) or 0)


@st.cache_data(ttl=CHART_TTL_S, show_spinner=False, max_entries=16)
def _counts(_db: Database, url: str, newest: int, zone_key: str, _zone) -> tuple[dict, list]:
    return posts_by_platform(_db), posts_per_day(_db, _zone)


def per_period(days: list[tuple[date, str, int]]) -> tuple[pd.DataFrame, str]:
    """(frame of period, platform, posts; 'day' or 'month'): by day, or by month over a long span."""
    frame = pd.DataFrame(days, columns=["period", "platform", "posts"])
    if frame.empty or (frame["period"].max() - frame["period"].min()).days <= MONTHLY_AFTER_DAYS:
        frame["period"] = frame["period"].map(date.isoformat)
        return frame, "day"
    frame["period"] = frame["period"].map(lambda d: d.replace(day=1).isoformat())
    return frame.groupby(["period", "platform"], as_index=False)["posts"].sum(), "month"


def show_charts(rt) -> None:
    reader_zone = zone()
    by_platform, days = _counts(rt.db, rt.db.url, _newest_post(rt.db), zone_name(reader_zone), reader_zone)
    if not by_platform:
        return
    left, right = st.columns([2, 3])
    platforms = pd.DataFrame(list(by_platform.items()), columns=["platform", "posts"])
    left.altair_chart(
        alt.Chart(platforms, title=t("data.chart_platforms")).mark_bar()
        .encode(y=alt.Y("platform:N", sort="-x", title=t("data.col_platform")),
                x=alt.X("posts:Q", title=t("data.col_posts")),
                color=alt.Color("platform:N", legend=None), tooltip=["platform", "posts"]),
        width="stretch")
    frame, period = per_period(days)
    if frame.empty:
        right.caption(t("data.chart_no_times"))
        return
    # the periods are local dates already: a UTC scale draws them as they are
    right.altair_chart(
        alt.Chart(frame, title=t("data.chart_over_time", zone=zone_name(reader_zone))).mark_bar()
        .encode(x=alt.X("period:T", title=t("data.chart_day") if period == "day" else t("data.chart_month"),
                        scale=alt.Scale(type="utc"), timeUnit="utcyearmonthdate" if period == "day" else
                        "utcyearmonth"),
                y=alt.Y("sum(posts):Q", title=t("data.col_posts"), stack=True),
                color=alt.Color("platform:N", title=t("data.col_platform")),
                tooltip=[alt.Tooltip("period:N", title=t("data.chart_day") if period == "day" else
                                     t("data.chart_month")), "platform", "posts"]),
        width="stretch")
