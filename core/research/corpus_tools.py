"""The Insight tools over the local corpus, and the corpus as a search provider for every engine.

BettaFish's five Insight tools (hot content, topic search, topic search by date, comments, topic on
one platform), and the Query and Media engines' tool names mapped onto corpus searches so those
engines can run offline.

Every tool answers about the topic: posts the run's ``TopicScope`` admits (or, without a scope, posts
past the relevance floor on the query). "Hot content" is the topic's hottest posts, never the
corpus-wide hot list.

Time windows ("last 24 hours / week / year") are measured back from the NEWEST post in the corpus
(within the platforms searched), not from the wall clock, so a corpus collected last year -- or the
demo corpus -- still answers "what was hot this week".
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Sequence

from loguru import logger

from core.corpus.search import CorpusSlice, newest_post_time, search_posts, validate_platform
from core.text.dates import parse_date
from core.infra import retry
from core.infra.db import Database
from core.corpus.documents import Document
from core.infra.logs import engine_logger
from core.research.reasoning import ToolSpec
from core.research.relevance import TopicScope

TIME_PERIODS: dict[str, int | None] = {
    "24h": 1, "day": 1, "1d": 1, "today": 1,
    "week": 7, "7d": 7,
    "month": 30, "30d": 30,
    "year": 365, "365d": 365,
    "all": None,
}


def _window(db: Database, days: int | None, where: CorpusSlice | None = None
            ) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the last `days` days before the newest post. (None, None) -- no window -- for
    days=None, and when no post has a publish time (a window cannot apply; all posts count)."""
    newest = newest_post_time(db, where=where) if days is not None else None
    if newest is None:
        return None, None
    return newest - timedelta(days=days), newest


def _period_days(time_period: Any) -> int | None:
    key = str(time_period or "").strip().lower()
    if key not in TIME_PERIODS:
        raise ValueError(f"time_period must be one of 24h, week, month, year, all; got {str(time_period)[:20]!r}")
    return TIME_PERIODS[key]


def _dates(start_date: Any, end_date: Any, *, required: bool) -> tuple[Any, Any]:
    if not required and start_date in (None, "") and end_date in (None, ""):
        return None, None
    lo = parse_date(start_date, "start_date") if (required or start_date not in (None, "")) else None
    hi = parse_date(end_date, "end_date") if (required or end_date not in (None, "")) else None
    if lo and hi and lo > hi:
        raise ValueError(f"start_date {lo} is after end_date {hi}")
    return lo, hi


def search_hot_content(db: Database, topic: str, time_period: str = "week", limit: int = 50, *,
                       scope: TopicScope | None = None, where: CorpusSlice | None = None) -> list[Document]:
    """The hottest posts ABOUT THE TOPIC (hotness = likes + 5·comments + 10·shares + 0.1·views) of the
    last 24h / week / month / year -- measured back from the newest post, not from now."""
    lo, hi = _window(db, _period_days(time_period), where)
    return search_posts(db, topic, limit=limit, start=lo, end=hi, order="hot", scope=scope, where=where)


def search_topic_globally(db: Database, topic: str, limit: int = 50, *, scope: TopicScope | None = None,
                          where: CorpusSlice | None = None) -> list[Document]:
    """Posts and comments about a topic on every platform, best matches first."""
    return search_posts(db, topic, limit=limit, scope=scope, where=where)


def search_topic_by_date(db: Database, topic: str, start_date: str, end_date: str, limit: int = 50, *,
                         scope: TopicScope | None = None, where: CorpusSlice | None = None) -> list[Document]:
    """Posts about a topic published from start_date to end_date inclusive ('YYYY-MM-DD')."""
    lo, hi = _dates(start_date, end_date, required=True)
    return search_posts(db, topic, limit=limit, start=lo, end=hi, scope=scope, where=where)


def get_comments_for_topic(db: Database, topic: str, limit: int = 50, *, scope: TopicScope | None = None,
                           where: CorpusSlice | None = None) -> list[Document]:
    """Comments (kind == 'comment') about a topic, best matches first."""
    return search_posts(db, topic, limit=limit, kinds=("comment",), scope=scope, where=where)


def search_topic_on_platform(db: Database, platform: str, topic: str, start_date: str | None = None,
                             end_date: str | None = None, limit: int = 20, *, scope: TopicScope | None = None,
                             where: CorpusSlice | None = None) -> list[Document]:
    """Posts about a topic on one platform (weibo, douyin, bilibili, xhs, zhihu, tieba, kuaishou, news),
    optionally within dates ('YYYY-MM-DD', inclusive)."""
    plat = validate_platform(platform)
    lo, hi = _dates(start_date, end_date, required=False)
    return search_posts(db, topic, limit=limit, platforms=[plat], start=lo, end=hi, scope=scope, where=where)


INSIGHT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("search_topic_globally", "Posts and comments about the topic on every platform, best matches first.",
             ("limit",)),
    ToolSpec("search_hot_content",
             "The hottest posts about the topic in a recent period (hotness = likes + 5·comments + 10·shares + "
             "0.1·views); time_period: 24h, week or year, counted back from the newest post in the corpus.",
             ("time_period", "limit")),
    ToolSpec("search_topic_by_date",
             "Posts about the topic published between start_date and end_date (YYYY-MM-DD, inclusive).",
             ("start_date", "end_date", "limit")),
    ToolSpec("get_comments_for_topic", "Comments about the topic: what ordinary users say in replies.", ("limit",)),
    ToolSpec("search_topic_on_platform",
             "Posts about the topic on one platform (weibo, douyin, bilibili, xhs, zhihu, tieba, kuaishou, news), "
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

    ``where`` is the engine's slice of the corpus (core.research.engine's ENGINES say which); ``scope`` the
    run's topic, so every result is about the topic whatever the query adds; ``tools`` the ToolSpecs
    shown to the reasoner (default: the five Insight tools). ``run_tool`` raises ValueError only for
    parameters it cannot read in a tool that needs them (dates, platform); an unknown tool name falls
    back to a topic search.
    """

    name = "corpus"

    def __init__(self, db: Database, where: CorpusSlice | None = None, tools: Sequence[ToolSpec] | None = None,
                 scope: TopicScope | None = None):
        self.db = db
        self.where = where
        self.scope = scope
        self.tools: tuple[ToolSpec, ...] = tuple(tools) if tools else INSIGHT_TOOLS

    supported_tools: tuple[str, ...] = tuple(t.name for t in INSIGHT_TOOLS) + tuple(_MAPPED_TOOLS)

    def search(self, query: str, limit: int = 20) -> list[Document]:
        return search_posts(self.db, query, limit=limit, scope=self.scope, where=self.where)

    def run_tool(self, tool: str, query: str, **params: Any) -> list[Document]:
        t0 = time.perf_counter()
        # A database that drops its connections for a few seconds (a restart, a failover) delays the
        # search instead of failing it, as it delays the supervisor's writes (the same policy).
        docs = retry.call_with_retry(retry.DATABASE, self._dispatch, str(tool or "").strip(), query, params,
                                     op=f"corpus {tool}")
        engine_logger("knowledge_query").info(
            "corpus tool={} query={!r} params={} slice={} results={} ms={:.0f}", tool, str(query)[:200],
            {k: str(v)[:40] for k, v in params.items()}, self.where.name if self.where else "all", len(docs),
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

    def _dispatch(self, tool: str, query: str, params: dict) -> list[Document]:
        db, kw = self.db, {"scope": self.scope, "where": self.where}
        if tool == "search_hot_content":
            return search_hot_content(db, query, params.get("time_period") or "week", self._limit(params, 50), **kw)
        if tool == "search_topic_globally":
            return search_topic_globally(db, query, self._limit(params, 50), **kw)
        if tool == "search_topic_by_date":
            return search_topic_by_date(db, query, params.get("start_date"), params.get("end_date"),
                                        self._limit(params, 50), **kw)
        if tool == "get_comments_for_topic":
            return get_comments_for_topic(db, query, self._limit(params, 50), **kw)
        if tool == "search_topic_on_platform":
            platform = validate_platform(params.get("platform"))
            if self.where is not None and not self.where.allows_platform(platform):
                return []  # another engine's slice
            return search_topic_on_platform(db, platform, query, params.get("start_date"), params.get("end_date"),
                                            self._limit(params, 20), **kw)
        mapped = _MAPPED_TOOLS.get(tool)
        if mapped is None:
            logger.warning("corpus: unknown tool {!r}; searching the topic instead", tool[:60])
            return search_topic_globally(db, query, self._limit(params, 50), **kw)
        kind, default_limit, days = mapped
        n = self._limit(params, default_limit)
        if kind == "window":
            lo, hi = _window(db, days, self.where)
            return search_posts(db, query, limit=n, start=lo, end=hi, **kw)
        if kind == "date":
            return search_topic_by_date(db, query, params.get("start_date"), params.get("end_date"), n, **kw)
        return search_posts(db, query, limit=n, **kw)
