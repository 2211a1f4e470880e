"""What the Data page shows of the corpus: one page of posts (searched with the engines' ranking, or
newest first) and the counts its charts draw.

Paging happens here, in the database and the search layer, never by loading every post: without a
query one page is a LIMIT/OFFSET over (publish time, id); with a query the light rows the search
ranks (core.corpus.search.rank: BM25 over the full-text index, the relevance floor, at most
MAX_CANDIDATES) are sliced and only that page's posts are read in full.

Time buckets are days in the reader's zone: stored times are naive UTC, so the counts are grouped
by hour in SQL (shifted by the zone's sub-hour offset, e.g. +05:30) and each hour is then placed in
its local day, which keeps a post near midnight on the right day in every zone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Iterable

from sqlalchemy import func, literal_column, select, text

from core.corpus.documents import Document
from core.corpus.search import MAX_CANDIDATES, fetch_documents, normalize_platform, post_to_document, rank
from core.infra.clock import as_zone
from core.infra.db import Database
from core.infra.models import Post

PAGE_SIZES = (10, 20, 50, 100)
MAX_PAGE_SIZE = max(PAGE_SIZES)


@dataclass(frozen=True)
class PostPage:
    """One page of the browser: its posts (each Document's ``score`` is its BM25 rank score when
    searched, 0 otherwise), the page asked for, and how many posts match in all."""
    posts: list[Document]
    page: int  # from 1, clamped to the last page
    page_size: int
    total: int
    capped: bool = False  # a search found more than the MAX_CANDIDATES it ranks; total counts those

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def first(self) -> int:
        """The position (from 1) of this page's first post, 0 when the page is empty."""
        return (self.page - 1) * self.page_size + 1 if self.posts else 0


def _platforms(platforms: Iterable[str] | str | None) -> list[str] | None:
    if platforms is None:
        return None
    items = [platforms] if isinstance(platforms, str) else list(platforms)
    return sorted({normalize_platform(p) for p in items if str(p).strip()}) or None


def browse_posts(db: Database, query: str = "", *, platforms: Iterable[str] | str | None = None, page: int = 1,
                 page_size: int = 20) -> PostPage:
    """Page ``page`` of the posts matching ``query`` (ranked as the engines rank: BM25 with the
    relevance floor), or of every post newest first when the query is blank; on ``platforms`` only
    when given. A page past the end shows the last page."""
    size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    page = max(1, int(page))
    plats = _platforms(platforms)
    if (query or "").strip():
        ranked = rank(db, query, platforms=plats)
        total = len(ranked)
        page = min(page, max(1, -(-total // size)))
        chunk = ranked[(page - 1) * size: page * size]
        return PostPage(fetch_documents(db, chunk), page, size, total, capped=total >= MAX_CANDIDATES)
    conds = [Post.platform.in_(plats)] if plats else []
    with db.session() as s:
        total = int(s.scalar(select(func.count()).select_from(Post).where(*conds)) or 0)
        page = min(page, max(1, -(-total // size)))
        # newest first, undated posts last (a NULL sorts first in a descending order on SQLite and MySQL)
        rows = s.scalars(select(Post).where(*conds)
                         .order_by(Post.publish_time.is_(None), Post.publish_time.desc(), Post.id.desc())
                         .offset((page - 1) * size).limit(size)).all()
        posts = [post_to_document(p) for p in rows]
    return PostPage(posts, page, size, total)


# ----------------------------------------------------------------------------- chart counts


def posts_by_platform(db: Database) -> dict[str, int]:
    """Posts (and comments) per platform, most first."""
    with db.session() as s:
        rows = s.execute(select(Post.platform, func.count()).group_by(Post.platform)
                         .order_by(func.count().desc(), Post.platform)).all()
    return {str(p): int(n) for p, n in rows}


def _offset_minutes(zone: tzinfo, at: datetime | None) -> int:
    moment = as_zone(at or datetime(2000, 1, 1), zone)
    return int((moment.utcoffset() or timedelta(0)).total_seconds() // 60)


def _hour_expr(db: Database, shift_minutes: int):
    """The UTC hour of publish_time shifted by `shift_minutes` (0..59), as 'YYYY-MM-DD HH'."""
    if db.backend in ("mysql", "mariadb"):
        return literal_column(f"DATE_FORMAT(DATE_ADD(posts.publish_time, INTERVAL {int(shift_minutes)} MINUTE), "
                    "'%Y-%m-%d %H')")
    if db.backend == "postgresql":
        return literal_column(f"to_char(posts.publish_time + make_interval(mins => {int(shift_minutes)}), "
                              "'YYYY-MM-DD HH24')")
    return literal_column(f"strftime('%Y-%m-%d %H', posts.publish_time, '+{int(shift_minutes)} minutes')")


def posts_per_day(db: Database, zone: tzinfo) -> list[tuple[date, str, int]]:
    """(day in ``zone``, platform, posts) for every day and platform that has posts; undated posts
    are not counted (corpus_summary says how many there are)."""
    with db.session() as s:
        newest = s.scalar(select(func.max(Post.publish_time)))
        if newest is None:
            return []
        # The zone's offset modulo an hour (30 for +05:30, 45 for +05:45; DST moves whole hours).
        shift = _offset_minutes(zone, newest) % 60
        hour = _hour_expr(db, shift).label("hour")
        rows = s.execute(select(hour, Post.platform, func.count()).where(Post.publish_time.is_not(None))
                         .group_by(text("hour"), Post.platform)).all()
    counts: dict[tuple[date, str], int] = {}
    for bucket, platform, n in rows:
        if not bucket:
            continue
        shifted = datetime.strptime(str(bucket), "%Y-%m-%d %H")
        day = as_zone(shifted - timedelta(minutes=shift), zone).date()
        key = (day, str(platform))
        counts[key] = counts.get(key, 0) + int(n)
    return sorted((d, p, n) for (d, p), n in counts.items())


__all__ = ["MAX_PAGE_SIZE", "PAGE_SIZES", "PostPage", "browse_posts", "posts_by_platform", "posts_per_day"]
