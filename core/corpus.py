"""The local corpus of posts (importers, search and demo data arrive with the engines)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from .db import Database
from .models import Post


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
