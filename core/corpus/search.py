"""The local corpus of posts: Chinese full-text search, the Insight tools, and a search provider.

How posts are cut into words and indexed on each backend (SQLite FTS5, MySQL FULLTEXT, a
PostgreSQL tsvector) is core.corpus.fulltext, whose names are re-exported here; this module finds
candidates with that index and ranks them (BM25 in Python, core.research.relevance).

Time windows
------------
"Last 24 hours / week / year" in the tools below are measured back from the NEWEST post in the
corpus (within the platforms searched), not from the wall clock, so a corpus collected last
year -- or the demo corpus -- still answers "what was hot this week".
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from loguru import logger
from sqlalchemy import Float, and_, func, or_, select, text, true, type_coerce
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import aliased

from core.corpus.documents import Document
from core.corpus.fulltext import (FTS_TABLE, MAX_QUERY_TOKENS, TOKEN_PREFIX, ensure_search_index, index_text,
                                  is_mysql, pg_match_query, pg_tsvector, query_terms, segment)
from core.infra.db import Database
from core.infra.models import Post
from core.research.relevance import DEFAULT_FLOOR, TopicScope, bm25, bm25_idf, coverage
from core.text.dates import parse_date, parse_time

# ----------------------------------------------------------------------------- platforms

# The social and video platforms MindSpider/MediaCrawler crawl, plus "news" for news sites: every
# name the planner, the tools and the importers use.
PLATFORMS: tuple[str, ...] = ("weibo", "douyin", "bilibili", "xhs", "zhihu", "tieba", "kuaishou", "news")

PLATFORM_ALIASES: dict[str, str] = {
    "微博": "weibo", "sina": "weibo", "wb": "weibo",
    "抖音": "douyin", "dy": "douyin", "tiktok_cn": "douyin",
    "b站": "bilibili", "哔哩哔哩": "bilibili", "bili": "bilibili",
    "小红书": "xhs", "xiaohongshu": "xhs", "redbook": "xhs", "rednote": "xhs",
    "知乎": "zhihu",
    "贴吧": "tieba", "百度贴吧": "tieba",
    "快手": "kuaishou", "ks": "kuaishou",
    "新闻": "news", "媒体": "news",
}

PLATFORM_LABELS: dict[str, str] = {
    "weibo": "微博", "douyin": "抖音", "bilibili": "B站", "xhs": "小红书", "zhihu": "知乎", "tieba": "贴吧",
    "kuaishou": "快手", "news": "新闻",
}


def normalize_platform(name: Any) -> str:
    """'微博' / 'Weibo ' / 'xiaohongshu' -> 'weibo' / 'weibo' / 'xhs'; other names lower-cased as given."""
    key = str(name or "").strip().lower()
    return PLATFORM_ALIASES.get(key, key)[:32]


def validate_platform(name: Any) -> str:
    """One of PLATFORMS (aliases accepted), else ValueError naming the valid ones."""
    platform = normalize_platform(name)
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {str(name)[:40]!r}: use one of {', '.join(PLATFORMS)}")
    return platform


# ----------------------------------------------------------------------------- search

ORDERS = ("relevance", "hot", "time")
MAX_LIMIT = 1000


def _hot_expr():
    return Post.likes + Post.comments * 5 + Post.shares * 10 + Post.views * 0.1


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _bound(value: Any, *, end: bool) -> tuple[datetime, bool] | None:
    """(bound, exclusive) for a date, datetime or 'YYYY-MM-DD[ HH:MM[:SS]]' string. A bare date as an
    end bound covers that whole day: it becomes the next midnight, compared exclusively."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)), False
    if isinstance(value, date):
        midnight = datetime(value.year, value.month, value.day)
        return (midnight + timedelta(days=1), True) if end else (midnight, False)
    if isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", s):
            return _bound(parse_date(s), end=end)
        try:
            when = parse_time(s)
        except ValueError:
            when = None
        if when is not None:
            return _bound(when, end=end)
    raise ValueError(f"not a date: {str(value)[:40]!r} (use YYYY-MM-DD)")


@dataclass(frozen=True)
class CorpusSlice:
    """The part of the corpus one engine reads offline: posts on some platforms (or on all but some),
    without comments (``posts_only``); ``comments_anywhere`` adds every comment, whatever its platform."""
    name: str = "all"
    platforms: tuple[str, ...] | None = None
    exclude_platforms: tuple[str, ...] = ()
    posts_only: bool = False
    comments_anywhere: bool = False

    def condition(self):
        parts = []
        if self.platforms is not None:
            parts.append(Post.platform.in_(self.platforms))
        if self.exclude_platforms:
            parts.append(Post.platform.not_in(self.exclude_platforms))
        if self.posts_only:
            parts.append(Post.kind != "comment")
        base = and_(*parts) if parts else true()
        return or_(base, Post.kind == "comment") if self.comments_anywhere else base

    def allows_platform(self, platform: str) -> bool:
        if self.comments_anywhere:
            return True
        if self.platforms is not None and platform not in self.platforms:
            return False
        return platform not in self.exclude_platforms


def _filters(platforms, start, end, kinds, where: CorpusSlice | None = None) -> list:
    conds = [] if where is None else [where.condition()]
    plats = _as_list(platforms)
    if plats is not None:
        conds.append(Post.platform.in_(sorted({normalize_platform(p) for p in plats})))
    kind_list = _as_list(kinds)
    if kind_list is not None:
        conds.append(Post.kind.in_(sorted({k.strip().lower() for k in kind_list})))
    lo, hi = _bound(start, end=False), _bound(end, end=True)
    if lo is not None:
        conds.append(Post.publish_time >= lo[0])
    if hi is not None:
        conds.append(Post.publish_time < hi[0] if hi[1] else Post.publish_time <= hi[0])
    return conds


def _clamp_limit(limit: Any) -> int:
    try:
        n = int(limit)
    except (TypeError, ValueError):
        raise ValueError(f"limit must be a number, got {str(limit)[:20]!r}") from None
    return max(0, min(n, MAX_LIMIT))


MAX_CANDIDATES = 5000  # light rows (id, tokens, hotness, time) scored in Python per search


@dataclass(frozen=True)
class Candidate:
    """A post as the ranking sees it: its search tokens and what the orders need, nothing more."""
    id: int
    tokens: tuple[str, ...]
    platform: str
    kind: str
    hot: float
    published: datetime | None
    thread: tuple[str, ...] = ()  # a comment's thread: the search tokens of the post it replies to

    @property
    def token_set(self) -> frozenset[str]:
        return frozenset(self.tokens)


@dataclass(frozen=True)
class IndexStats:
    n_docs: int
    avgdl: float  # mean number of search tokens per post
    version: tuple  # changes whenever posts are added or removed


_df_cache: "weakref.WeakKeyDictionary[Database, tuple[tuple, dict[str, int]]]" = weakref.WeakKeyDictionary()
_df_lock = threading.Lock()


_avgdl_cache: "weakref.WeakKeyDictionary[Database, tuple[tuple, float]]" = weakref.WeakKeyDictionary()


def index_stats(db: Database) -> IndexStats:
    """How many posts, their mean token count, and a version that changes with every import.

    The version (count, max id) is read on every search; the mean length, a scan of every row, only
    when the version changed."""
    with db.session() as s:
        n, last = s.execute(select(func.count(), func.max(Post.id)).select_from(Post)).one()
        version = (int(n or 0), int(last or 0))
        with _df_lock:
            cached = _avgdl_cache.get(db)
        if cached is not None and cached[0] == version:
            avg = cached[1]
        else:
            # tokens = spaces + 1; LENGTH counts bytes on MySQL, but a space is one byte everywhere
            avg = float(s.scalar(select(func.avg(func.length(Post.content_seg)
                                                 - func.length(func.replace(Post.content_seg, " ", "")) + 1))
                                 .where(Post.content_seg != "")) or 1.0)
            with _df_lock:
                _avgdl_cache[db] = (version, avg)
    return IndexStats(version[0], avg, version)


def document_frequencies(db: Database, terms: Iterable[str], stats: IndexStats | None = None) -> dict[str, int]:
    """How many posts hold each encoded search term, from the full-text index (cached per corpus version)."""
    stats = stats or index_stats(db)
    terms = list(dict.fromkeys(terms))
    with _df_lock:
        version, cache = _df_cache.get(db, (None, {}))
        if version != stats.version:
            cache = {}
            _df_cache[db] = (stats.version, cache)
    missing = [t for t in terms if t not in cache]
    if missing:
        ensure_search_index(db)
        with db.session() as s:
            for t in missing:
                if is_mysql(db):
                    df = s.scalar(text("SELECT COUNT(*) FROM posts WHERE MATCH(content_seg) AGAINST(:t IN BOOLEAN MODE)"),
                                  {"t": t})
                elif db.backend == "postgresql":
                    df = s.scalar(select(func.count()).select_from(Post).where(pg_tsvector().op("@@")(pg_match_query([t]))))
                else:
                    df = s.scalar(text(f"SELECT COUNT(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :t"),
                                  {"t": '"' + t.replace('"', '""') + '"'})
                cache[t] = int(df or 0)
    return {t: cache[t] for t in terms}


def term_idf(db: Database, terms: Iterable[str], stats: IndexStats | None = None) -> dict[str, float]:
    stats = stats or index_stats(db)
    return {t: bm25_idf(stats.n_docs, df) for t, df in document_frequencies(db, terms, stats).items()}


def candidates(db: Database, terms: list[str], *, platforms: Iterable[str] | str | None = None, start: Any = None,
               end: Any = None, kinds: Iterable[str] | str | None = None, order: str = "relevance",
               limit: int = MAX_CANDIDATES, where: CorpusSlice | None = None) -> list[Candidate]:
    """Posts holding any of ``terms`` (encoded), best by the backend's score (or hottest / newest
    first), as light rows. The index finds them; ``core.research.relevance`` decides."""
    if not terms:
        return []
    conds = _filters(platforms, start, end, kinds, where)
    ensure_search_index(db)
    try:
        return _candidates(db, terms, conds, order, limit)
    except (OperationalError, ProgrammingError) as exc:
        # The index vanished under us (a table dropped and re-created): make it again, once.
        logger.warning("corpus search failed ({}); re-creating the search index", str(exc).splitlines()[0][:200])
        ensure_search_index(db, force=True)
        return _candidates(db, terms, conds, order, limit)


def search_posts(db: Database, query: str, *, limit: int = 20, platforms: Iterable[str] | str | None = None,
                 start: Any = None, end: Any = None, kinds: Iterable[str] | str | None = None,
                 order: str = "relevance", scope: TopicScope | None = None, floor: float = DEFAULT_FLOOR,
                 where: CorpusSlice | None = None) -> list[Document]:
    """Full-text search over title + content, ranked by BM25 (order="relevance"), or the relevant
    posts by hotness ("hot") or newest first ("time").

    What is kept: with a ``scope`` (a run's topic), only posts the scope admits -- about the topic,
    whatever else the query asks for; without one, posts past the relevance ``floor`` on the query's
    own terms. A blank, punctuation-only or operator-only query returns []. Never raises for odd
    query text."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    n = _clamp_limit(limit)
    if n == 0:
        return []
    ranked = rank(db, query, platforms=platforms, start=start, end=end, kinds=kinds, order=order, scope=scope,
                  floor=floor, where=where)
    return fetch_documents(db, ranked[:n])


def rank(db: Database, query: str, *, platforms: Iterable[str] | str | None = None, start: Any = None,
         end: Any = None, kinds: Iterable[str] | str | None = None, order: str = "relevance",
         scope: TopicScope | None = None, floor: float = DEFAULT_FLOOR,
         where: CorpusSlice | None = None) -> list[tuple[Candidate, float]]:
    """Every post ``search_posts`` would keep, as (light row, BM25 score), best first (at most
    MAX_CANDIDATES): the one ranking behind the engines' searches and the Data page's browser, which
    pages through it and loads only the posts of one page (``fetch_documents``)."""
    terms = query_terms(query)
    if not terms:
        return []
    stats = index_stats(db)
    idf = term_idf(db, terms, stats)
    rows = candidates(db, terms, platforms=platforms, start=start, end=end, kinds=kinds, order=order, where=where)
    if scope is not None:
        kept = [c for c in rows if scope.admits(c.token_set, c.thread)]
    else:
        kept = [c for c in rows if coverage(c.token_set, terms, idf) >= floor]
    scores = {c.id: bm25(list(c.tokens), terms, idf, stats.avgdl) for c in kept}
    if order == "relevance":
        kept.sort(key=lambda c: (-scores[c.id], -c.hot, -c.id))
    return [(c, scores[c.id]) for c in kept]


def fetch_documents(db: Database, ranked: list[tuple[Candidate, float]]) -> list[Document]:
    """The full posts of ranked rows, in their order, each with its score (rounded as searches show it)."""
    with db.session() as s:
        posts = {p.id: p for p in s.scalars(select(Post).where(Post.id.in_([c.id for c, _ in ranked])))}
    return [post_to_document(posts[c.id], score=round(score, 4)) for c, score in ranked if c.id in posts]


# Made once, not per search: an alias proxies each of Post's columns, about 0.5 ms of every search
# (a third of a small one's ranking: 1.8-1.9 against 1.2-1.3 ms on the demo corpus, 2026-12-05).
_PARENT = aliased(Post, name="parent_post")  # a comment's thread (the unique (platform, post_id) index finds it)
_FTS = sql_table(FTS_TABLE, sql_column("rowid"))


def _candidates(db: Database, terms: list[str], conds: list, order: str, limit: int) -> list[Candidate]:
    parent = _PARENT
    cols = (Post.id, Post.content_seg, Post.platform, Post.kind, _hot_expr().label("hot"), Post.publish_time,
            parent.content_seg)
    on_parent = and_(Post.kind == "comment", parent.platform == Post.platform, parent.post_id == Post.parent_id)
    if is_mysql(db):
        from sqlalchemy.dialects.mysql import match

        m = match(Post.content_seg, against=" ".join(terms)).in_boolean_mode()  # no operators: OR semantics
        stmt = select(*cols).outerjoin(parent, on_parent).where(m, *conds)
        ordering = [type_coerce(m, Float).desc()]
    elif db.backend == "postgresql":
        query, tsv = pg_match_query(terms), pg_tsvector()
        stmt = select(*cols).outerjoin(parent, on_parent).where(tsv.op("@@")(query), *conds)
        ordering = [func.ts_rank(tsv, query).desc()]
    else:
        expr = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        fts = _FTS
        stmt = (select(*cols).join_from(Post, fts, fts.c.rowid == Post.id).outerjoin(parent, on_parent)
                .where(text(f"{FTS_TABLE} MATCH :fts_q").bindparams(fts_q=expr), *conds))
        ordering = [text(f"bm25({FTS_TABLE})")]
    if order == "hot":
        ordering = [_hot_expr().desc(), Post.publish_time.desc(), Post.id.desc()]
    elif order == "time":
        ordering = [Post.publish_time.desc(), Post.id.desc()]
    with db.session() as s:
        rows = s.execute(stmt.order_by(*ordering).limit(limit)).all()
    return [Candidate(int(r[0]), tuple((r[1] or "").split()), r[2] or "", r[3] or "post", float(r[4] or 0.0), r[5],
                      tuple((r[6] or "").split()))
            for r in rows]


def post_to_document(post: Post, score: float = 0.0) -> Document:
    """A corpus post as the Document every search returns (doc_id = "platform:post_id")."""
    title = (post.title or "").strip()
    if not title:
        first = (post.content or "").strip().splitlines()[0] if (post.content or "").strip() else ""
        title = first[:40]  # a prefix of the content, so Document.text does not repeat it
    extras = dict(post.extras or {})
    extras.update({"post_id": post.post_id, "parent_id": post.parent_id, "keyword": post.keyword,
                   "corpus_source": post.source})
    return Document(
        title=title, content=post.content or "", url=post.url or "", published=post.publish_time,
        platform=post.platform, author=post.author or "", likes=int(post.likes or 0),
        comments=int(post.comments or 0), shares=int(post.shares or 0), views=int(post.views or 0),
        sentiment=post.sentiment, source="corpus", kind=post.kind or "post", score=float(score),
        doc_id=f"{post.platform}:{post.post_id}", extras=extras,
    )


def newest_post_time(db: Database, platforms: Iterable[str] | str | None = None,
                     where: CorpusSlice | None = None) -> datetime | None:
    """The publish time of the newest post (within the platforms or slice, when given): 'now' for the
    time windows."""
    conds = _filters(platforms, None, None, None, where)
    with db.session() as s:
        return s.scalar(select(func.max(Post.publish_time)).where(*conds))


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class CorpusStats:
    total: int
    by_platform_source: list[tuple[str, str, int]]


def corpus_stats(db: Database) -> CorpusStats:
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Post)) or 0
        rows = s.execute(select(Post.platform, Post.source, func.count())
                         .group_by(Post.platform, Post.source).order_by(func.count().desc())).all()
    return CorpusStats(total, [tuple(r) for r in rows])


def corpus_summary(db: Database) -> dict[str, Any]:
    """What the corpus holds: totals by platform, kind and source, and the time span (for `data stats`)."""
    def grouped(col) -> dict[str, int]:
        rows = s.execute(select(col, func.count()).group_by(col).order_by(func.count().desc(), col)).all()
        return {str(k): int(v) for k, v in rows}

    with db.session() as s:
        total = int(s.scalar(select(func.count()).select_from(Post)) or 0)
        first, newest = s.execute(select(func.min(Post.publish_time), func.max(Post.publish_time))).one()
        undated = int(s.scalar(select(func.count()).select_from(Post).where(Post.publish_time.is_(None))) or 0)
        by_platform, by_kind, by_source = grouped(Post.platform), grouped(Post.kind), grouped(Post.source)
    return {
        "total": total,
        "by_platform": by_platform,
        "by_kind": by_kind,
        "by_source": by_source,
        "first_post": first.isoformat(sep=" ") if first else None,
        "newest_post": newest.isoformat(sep=" ") if newest else None,
        "span_days": round((newest - first).total_seconds() / 86400, 2) if first and newest else None,
        "undated": undated,
        "demo": by_source.get("demo", 0),
    }


__all__ = [
    "CorpusStats", "MAX_QUERY_TOKENS", "PLATFORMS", "PLATFORM_LABELS",
    "TOKEN_PREFIX", "corpus_stats", "corpus_summary", "ensure_search_index", "fetch_documents",
    "index_text", "newest_post_time", "normalize_platform", "post_to_document", "query_terms",
    "rank", "search_posts", "segment", "validate_platform",
]
