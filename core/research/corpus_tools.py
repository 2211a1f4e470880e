"""The Insight tools over the local corpus, and the corpus as a search provider for every engine.

BettaFish's five Insight tools (hot content, topic search, topic search by date, comments, topic on
one platform), and the Query and Media engines' tool names mapped onto corpus searches so those
engines can run offline.

Time windows ("last 24 hours / week / year") are measured back from the NEWEST post in the corpus
(within the platforms searched), not from the wall clock, so a corpus collected last year -- or the
demo corpus -- still answers "what was hot this week".
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from loguru import logger
from sqlalchemy import select

from ..corpus import (_clamp_limit, _filters, _hot_expr, newest_post_time, normalize_platform, parse_date,
                      post_to_document, search_posts, validate_platform)
from ..db import Database
from ..documents import Document, hotness
from ..logs import engine_logger
from ..models import Post
from ..reasoning import ToolSpec

TIME_PERIODS: dict[str, int | None] = {
    "24h": 1, "day": 1, "1d": 1, "today": 1,
    "week": 7, "7d": 7,
    "month": 30, "30d": 30,
    "year": 365, "365d": 365,
    "all": None,
}


def _window(db: Database, days: int | None, platforms) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the last `days` days before the newest post. (None, None) -- no window -- for
    days=None, and when no post has a publish time (a window cannot apply; all posts count)."""
    newest = newest_post_time(db, platforms) if days is not None else None
    if newest is None:
        return None, None
    return newest - timedelta(days=days), newest


def search_hot_content(db: Database, time_period: str = "week", limit: int = 50, *,
                       platforms: Iterable[str] | str | None = None) -> list[Document]:
    """The hottest posts (hotness = likes + 5·comments + 10·shares + 0.1·views) of the last 24h /
    week / month / year -- measured back from the newest post in the corpus, not from now."""
    key = str(time_period or "").strip().lower()
    if key not in TIME_PERIODS:
        raise ValueError(f"time_period must be one of 24h, week, month, year, all; got {str(time_period)[:20]!r}")
    n = _clamp_limit(limit)
    if n == 0:
        return []
    lo, hi = _window(db, TIME_PERIODS[key], platforms)
    conds = _filters(platforms, lo, hi, None)
    hot = _hot_expr()
    with db.session() as s:
        posts = s.scalars(select(Post).where(*conds)
                          .order_by(hot.desc(), Post.publish_time.desc(), Post.id.desc()).limit(n)).all()
    return [post_to_document(p, score=hotness(p.likes, p.comments, p.shares, p.views)) for p in posts]


def search_topic_globally(db: Database, topic: str, limit: int = 50, *,
                          platforms: Iterable[str] | str | None = None) -> list[Document]:
    """Posts and comments about a topic on every platform, best matches first."""
    return search_posts(db, topic, limit=limit, platforms=platforms)


def search_topic_by_date(db: Database, topic: str, start_date: str, end_date: str, limit: int = 50, *,
                         platforms: Iterable[str] | str | None = None) -> list[Document]:
    """Posts about a topic published from start_date to end_date inclusive ('YYYY-MM-DD')."""
    lo, hi = parse_date(start_date, "start_date"), parse_date(end_date, "end_date")
    if lo > hi:
        raise ValueError(f"start_date {lo} is after end_date {hi}")
    return search_posts(db, topic, limit=limit, platforms=platforms, start=lo, end=hi)


def get_comments_for_topic(db: Database, topic: str, limit: int = 50, *,
                           platforms: Iterable[str] | str | None = None) -> list[Document]:
    """Comments (kind == 'comment') about a topic, best matches first."""
    return search_posts(db, topic, limit=limit, platforms=platforms, kinds=("comment",))


def search_topic_on_platform(db: Database, platform: str, topic: str, start_date: str | None = None,
                             end_date: str | None = None, limit: int = 20) -> list[Document]:
    """Posts about a topic on one platform (weibo, douyin, bilibili, xhs, zhihu, tieba, kuaishou),
    optionally within dates ('YYYY-MM-DD', inclusive)."""
    plat = validate_platform(platform)
    lo = parse_date(start_date, "start_date") if start_date not in (None, "") else None
    hi = parse_date(end_date, "end_date") if end_date not in (None, "") else None
    if lo and hi and lo > hi:
        raise ValueError(f"start_date {lo} is after end_date {hi}")
    return search_posts(db, topic, limit=limit, platforms=[plat], start=lo, end=hi)


INSIGHT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("search_hot_content",
             "The hottest posts of a recent period (hotness = likes + 5·comments + 10·shares + 0.1·views); "
             "time_period: 24h, week or year, counted back from the newest post in the corpus.",
             ("time_period", "limit")),
    ToolSpec("search_topic_globally", "Posts and comments about the topic on every platform, best matches first.",
             ("limit",)),
    ToolSpec("search_topic_by_date",
             "Posts about the topic published between start_date and end_date (YYYY-MM-DD, inclusive).",
             ("start_date", "end_date", "limit")),
    ToolSpec("get_comments_for_topic", "Comments about the topic: what ordinary users say in replies.", ("limit",)),
    ToolSpec("search_topic_on_platform",
             "Posts about the topic on one platform (weibo, douyin, bilibili, xhs, zhihu, tieba, kuaishou), "
             "optionally between start_date and end_date.",
             ("platform", "start_date", "end_date", "limit")),
)

# The Query engine's (Tavily) and the Media engine's (Bocha) tool names, answered from the corpus
# offline: (kind, default limit, window days).
_MAPPED_TOOLS: dict[str, tuple[str, int, int | None]] = {
    "basic_search_news": ("topic", 20, None),
    "deep_search_news": ("topic", 50, None),
    "search_news_last_24_hours": ("window", 20, 1),
    "search_news_last_week": ("window", 20, 7),
    "search_images_for_news": ("topic", 20, None),  # the corpus holds no images: the matching posts
    "search_news_by_date": ("date", 30, None),
    "comprehensive_search": ("topic", 20, None),
    "web_search_only": ("topic", 20, None),
    "search_for_structured_data": ("topic", 20, None),
    "search_last_24_hours": ("window", 20, 1),
    "search_last_week": ("window", 20, 7),
}
_LIMIT_KEYS = ("limit", "max_results", "count", "top_k", "k")


class CorpusSearchProvider:
    """Search over the local corpus with the Insight tools, and with the Query and Media engines'
    tool names mapped onto corpus searches so those engines can run offline.

    ``platforms`` restricts every search (e.g. news-like platforms for Query, video and image
    platforms for Media); ``tools`` overrides the ToolSpecs shown to the reasoner (default: the
    five Insight tools). ``run_tool`` raises ValueError only for parameters it cannot read in a
    tool that needs them (dates, platform); an unknown tool name falls back to a global topic search.
    """

    name = "corpus"

    def __init__(self, db: Database, platforms: Sequence[str] | None = None,
                 tools: Sequence[ToolSpec] | None = None):
        self.db = db
        self.platforms: list[str] | None = (
            sorted({normalize_platform(p) for p in platforms}) if platforms else None)
        self.tools: tuple[ToolSpec, ...] = tuple(tools) if tools else INSIGHT_TOOLS

    supported_tools: tuple[str, ...] = tuple(t.name for t in INSIGHT_TOOLS) + tuple(_MAPPED_TOOLS)

    def search(self, query: str, limit: int = 20) -> list[Document]:
        return search_posts(self.db, query, limit=limit, platforms=self.platforms)

    def run_tool(self, tool: str, query: str, **params: Any) -> list[Document]:
        t0 = time.perf_counter()
        docs = self._dispatch(str(tool or "").strip(), query, params)
        engine_logger("knowledge_query").info(
            "corpus tool={} query={!r} params={} platforms={} results={} ms={:.0f}", tool, str(query)[:200],
            {k: str(v)[:40] for k, v in params.items()}, self.platforms, len(docs),
            (time.perf_counter() - t0) * 1000)
        return docs

    def _limit(self, params: dict, default: int) -> int:
        for key in _LIMIT_KEYS:
            if params.get(key) not in (None, ""):
                try:
                    return max(1, min(int(params[key]), 200))
                except (TypeError, ValueError):
                    break
        return default

    def _platform_allowed(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    def _dispatch(self, tool: str, query: str, params: dict) -> list[Document]:
        db, plats = self.db, self.platforms
        if tool == "search_hot_content":
            return search_hot_content(db, params.get("time_period") or "week", self._limit(params, 50),
                                      platforms=plats)
        if tool == "search_topic_globally":
            return search_topic_globally(db, query, self._limit(params, 50), platforms=plats)
        if tool == "search_topic_by_date":
            return search_topic_by_date(db, query, params.get("start_date"), params.get("end_date"),
                                        self._limit(params, 50), platforms=plats)
        if tool == "get_comments_for_topic":
            return get_comments_for_topic(db, query, self._limit(params, 50), platforms=plats)
        if tool == "search_topic_on_platform":
            platform = validate_platform(params.get("platform"))
            if not self._platform_allowed(platform):
                return []
            return search_topic_on_platform(db, platform, query, params.get("start_date"), params.get("end_date"),
                                            self._limit(params, 20))
        mapped = _MAPPED_TOOLS.get(tool)
        if mapped is None:
            logger.warning("corpus: unknown tool {!r}; searching the topic globally instead", tool[:60])
            return search_topic_globally(db, query, self._limit(params, 50), platforms=plats)
        kind, default_limit, days = mapped
        n = self._limit(params, default_limit)
        if kind == "window":
            lo, hi = _window(db, days, plats)
            return search_posts(db, query, limit=n, platforms=plats, start=lo, end=hi)
        if kind == "date":
            return search_topic_by_date(db, query, params.get("start_date"), params.get("end_date"), n,
                                        platforms=plats)
        return search_posts(db, query, limit=n, platforms=plats)
