"""Full-text search over the corpus, the same on every backend: how posts are cut into words and indexed.

(core.corpus.search searches and ranks with it; its names are re-exported there.)

Every post's title and content are segmented with jieba (search mode) into ``Post.content_seg``
when they are written (``index_text``; the importers do it, and ``ensure_search_index`` back-fills
rows that arrive without it). Each token is stored with the prefix ``TOKEN_PREFIX`` ("zx"):

* MySQL/MariaDB index ``content_seg`` with a FULLTEXT index queried ``IN BOOLEAN MODE``. MariaDB
  has no ngram parser and InnoDB drops tokens shorter than ``innodb_ft_min_token_size`` (3 by
  default, not changeable at run time), so the two-character words that make up most of Chinese
  (大学, 汽车) would never be indexed. With the prefix every token is at least three characters
  ("zx大学", even "zx车"), and no token is on InnoDB's English stopword list.
* SQLite indexes the same column with an FTS5 external-content table (``posts_fts``, keyed by
  ``posts.id``, kept in sync by triggers) and ranks by bm25. The prefix is harmless there and
  keeps one stored form for every backend.
* PostgreSQL has no Chinese parser, and needs none here: the words are already cut by jieba, so
  the built-in ``simple`` text-search configuration (no stemming, no stopwords, in every
  PostgreSQL without an extension) turns ``content_seg`` into a tsvector of exactly those tokens.
  It is a generated column ``posts.content_tsv`` with a GIN index, queried with ``@@`` and ranked
  by ``ts_rank``. Each term goes through ``phraseto_tsquery`` with the same parser, so a token the
  parser happens to split (a locale's view of an odd character) still matches the posts holding
  it. Rejected: zhparser/pg_jieba (extensions that must be built and installed on the server),
  and pg_trgm trigram ``ILIKE`` (contrib, but the database owner must install it, it matches
  substrings -- "大学" inside "大学生" -- rather than words, and in a C-locale database it
  ignores CJK characters, so its index finds nothing to narrow). Like MySQL's, the index only
  finds candidates: core.research.relevance scores them in Python from the stored tokens.
  A tsvector holds at most 1 MB, so the index covers the first ``PG_TSV_CHARS`` characters of
  ``content_seg`` (far more than any post; the Python scoring still sees every token).

Tokens keep only letters and digits (``[^\\W_]+``), lower-cased, so nothing in an indexed or a
query token is ever an FTS operator; queries are segmented the same way, de-duplicated and
capped at ``MAX_QUERY_TOKENS``. Multi-word queries use OR semantics: a post matching any word is
found, and posts matching more of the query's words rank first (then the backend's score:
bm25 on SQLite, InnoDB's relevance on MySQL, ts_rank on PostgreSQL).
"""
from __future__ import annotations

import re
import threading
import weakref
from typing import Any

from loguru import logger
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.exc import SQLAlchemyError

from core.infra.db import Database
from core.infra.models import Post
from core.research.relevance import TOKEN_PREFIX
from core.text.jieba_loader import get_jieba
from core.text.stopwords import FUNCTION_WORDS

# ----------------------------------------------------------------------------- segmentation

# TOKEN_PREFIX ("zx", see the module docstring) is defined in core.research.relevance, whose scopes
# compare the words inside tokens.
MAX_QUERY_TOKENS = 32
MAX_QUERY_CHARS = 2000
MAX_TOKEN_CHARS = 40  # InnoDB ignores tokens over innodb_ft_max_token_size (84); long ones are never searched
_WORD_RE = re.compile(r"[^\W_]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
def segment(text: str) -> list[str]:
    """The search words of a text: jieba search mode, lower-cased, letters and digits only, no stopwords."""
    if not text:
        return []
    text = _CONTROL_RE.sub(" ", text)
    out: list[str] = []
    for tok in get_jieba().cut_for_search(text):
        for word in _WORD_RE.findall(tok.lower()):
            if len(word) <= MAX_TOKEN_CHARS and word not in FUNCTION_WORDS:
                out.append(word)
    return out


def index_text(title: str, content: str) -> str:
    """The value for ``Post.content_seg``: the encoded search words of title and content."""
    words = segment(f"{title or ''}\n{content or ''}")
    return " ".join(TOKEN_PREFIX + w for w in words)


def query_terms(query: Any) -> list[str]:
    """Encoded, de-duplicated search words of a query (at most MAX_QUERY_TOKENS); [] when none."""
    if not isinstance(query, str):
        query = "" if query is None else str(query)
    seen: dict[str, None] = {}
    for word in segment(query[:MAX_QUERY_CHARS]):
        seen.setdefault(TOKEN_PREFIX + word, None)
        if len(seen) >= MAX_QUERY_TOKENS:
            break
    return list(seen)


# ----------------------------------------------------------------------------- the search index

FTS_TABLE = "posts_fts"
FULLTEXT_INDEX = "ft_posts_content_seg"
PG_TSV_COLUMN = "content_tsv"
PG_TSV_INDEX = "ix_posts_content_tsv"
# At most ~3.5 bytes of tsvector per character of content_seg (a 3-character token, its space, a
# 4-byte entry and a position), so 250,000 characters stay under PostgreSQL's 1 MB tsvector limit.
PG_TSV_CHARS = 250_000
_PG_TSV_DDL = (f"ALTER TABLE posts ADD COLUMN IF NOT EXISTS {PG_TSV_COLUMN} tsvector GENERATED ALWAYS AS "
               f"(to_tsvector('simple'::regconfig, left(content_seg, {PG_TSV_CHARS}))) STORED",
               f"CREATE INDEX IF NOT EXISTS {PG_TSV_INDEX} ON posts USING gin ({PG_TSV_COLUMN})")
_SQLITE_TRIGGERS = {
    "posts_fts_ai": f"""CREATE TRIGGER IF NOT EXISTS posts_fts_ai AFTER INSERT ON posts BEGIN
        INSERT INTO {FTS_TABLE}(rowid, content_seg) VALUES (new.id, new.content_seg); END""",
    "posts_fts_ad": f"""CREATE TRIGGER IF NOT EXISTS posts_fts_ad AFTER DELETE ON posts BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content_seg) VALUES ('delete', old.id, old.content_seg); END""",
    "posts_fts_au": f"""CREATE TRIGGER IF NOT EXISTS posts_fts_au AFTER UPDATE OF content_seg ON posts BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content_seg) VALUES ('delete', old.id, old.content_seg);
        INSERT INTO {FTS_TABLE}(rowid, content_seg) VALUES (new.id, new.content_seg); END""",
}
_ready: "weakref.WeakSet[Database]" = weakref.WeakSet()
_ready_lock = threading.Lock()


def is_mysql(db: Database) -> bool:
    return db.backend in ("mysql", "mariadb")


def pg_match_query(terms: list[str]):
    """The tsquery matching any of ``terms`` (OR): each a phrase of the tokens the parser makes of it."""
    parts = [func.phraseto_tsquery(literal_column("'simple'::regconfig"), t) for t in terms]
    query = parts[0]
    for part in parts[1:]:
        query = query.op("||")(part)
    return query


def pg_tsvector():
    return literal_column(f"posts.{PG_TSV_COLUMN}")


def ensure_search_index(db: Database, *, force: bool = False) -> None:
    """Create the full-text index if it is missing (idempotent, safe from several processes), and
    segment rows written without ``content_seg``. Cheap after the first call for a Database."""
    if not force and db in _ready:
        return
    engine = db.require()
    if is_mysql(db):
        with engine.connect() as conn:
            present = conn.scalar(text(
                "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = 'posts' AND INDEX_TYPE = 'FULLTEXT' AND COLUMN_NAME = 'content_seg'"))
        if not present:
            logger.info("corpus: creating the FULLTEXT index on posts.content_seg")
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE posts ADD FULLTEXT INDEX {FULLTEXT_INDEX} (content_seg)"))
            except SQLAlchemyError as exc:
                if "Duplicate key name" not in str(exc):  # another process made it meanwhile
                    raise
    elif db.backend == "postgresql":
        with engine.connect() as conn:
            present = conn.scalar(text(
                "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'posts' "
                "AND indexname = :ix"), {"ix": PG_TSV_INDEX})
        if not present:
            logger.info("corpus: creating the tsvector column and GIN index on posts")
            try:
                with engine.begin() as conn:
                    for ddl in _PG_TSV_DDL:
                        conn.execute(text(ddl))
            except SQLAlchemyError as exc:  # another process made them meanwhile
                if not any(m in str(exc) for m in ("already exists", "pg_class_relname_nsp_index")):
                    raise
    elif db.backend == "sqlite":
        with engine.begin() as conn:
            names = {r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE name IN ('posts_fts', 'posts_fts_ai', 'posts_fts_ad', "
                "'posts_fts_au')"))}
            if names != {FTS_TABLE, *_SQLITE_TRIGGERS}:
                logger.info("corpus: creating the FTS5 index posts_fts")
                conn.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
                                  "content_seg, content='posts', content_rowid='id')"))
                for ddl in _SQLITE_TRIGGERS.values():
                    conn.execute(text(ddl))
                # Rows written before the triggers existed: index everything once.
                conn.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
    else:
        raise ValueError(f"full-text search is not supported on {db.backend}")
    _backfill_segments(db)
    with _ready_lock:
        _ready.add(db)


def _backfill_segments(db: Database, batch: int = 500) -> int:
    """Segment posts stored without content_seg (e.g. written by hand); returns how many."""
    done, last_id = 0, 0
    while True:
        with db.session() as s:
            rows = s.execute(select(Post.id, Post.title, Post.content)
                             .where(Post.content_seg == "", Post.id > last_id).order_by(Post.id).limit(batch)).all()
            if not rows:
                return done
            for pid, title, content in rows:
                seg = index_text(title or "", content or "")
                if seg:
                    s.query(Post).filter(Post.id == pid).update({Post.content_seg: seg}, synchronize_session=False)
                    done += 1
            last_id = rows[-1][0]


__all__ = [
    "FTS_TABLE", "FULLTEXT_INDEX", "MAX_QUERY_TOKENS", "PG_TSV_CHARS", "PG_TSV_COLUMN", "TOKEN_PREFIX",
    "ensure_search_index", "index_text", "is_mysql", "pg_match_query", "pg_tsvector", "query_terms", "segment",
]
