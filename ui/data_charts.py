"""The Data page's charts: posts by platform, and posts over time per platform in the reader's zone.

The counts are aggregated in the database (core.corpus.browse) and cached until a post is added (or
CHART_TTL_S passes, for imports that only update posts).
"""
from __future__ import annotations

from datetime import date, timedelta

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
    """(frame of period, platform, posts; 'day' or 'month'): every period of the span and every
    platform, 0 where nothing was posted (so a stacked area does not bridge gaps); by day, or by month
    over a long span. Periods are local dates as ISO text."""
    frame = pd.DataFrame(days, columns=["period", "platform", "posts"])
    if frame.empty:
        return frame, "day"
    first, last = frame["period"].min(), frame["period"].max()
    if (last - first).days <= MONTHLY_AFTER_DAYS:
        periods, freq = [first + timedelta(days=i) for i in range((last - first).days + 1)], "day"
    else:
        frame["period"] = frame["period"].map(lambda d: d.replace(day=1))
        periods = [d.date() for d in pd.date_range(first.replace(day=1), last, freq="MS")]
        freq = "month"
    totals = frame.groupby(["period", "platform"])["posts"].sum()
    grid = pd.MultiIndex.from_product([periods, sorted(frame["platform"].unique())], names=["period", "platform"])
    full = totals.reindex(grid, fill_value=0).reset_index()
    full["period"] = full["period"].map(date.isoformat)
    return full, freq


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
    label = t("data.chart_day") if period == "day" else t("data.chart_month")
    right.altair_chart(
        alt.Chart(frame, title=t("data.chart_over_time", zone=zone_name(reader_zone))).mark_area()
        .encode(x=alt.X("period:T", title=label, scale=alt.Scale(type="utc"),
                        axis=alt.Axis(format="%Y-%m-%d" if period == "day" else "%Y-%m", labelOverlap=True)),
                y=alt.Y("posts:Q", title=t("data.col_posts"), stack="zero"),
                color=alt.Color("platform:N", title=t("data.col_platform")),
                tooltip=[alt.Tooltip("period:N", title=label), "platform", "posts"]),
        width="stretch")
