"""The local corpus of posts: Chinese full-text search, the Insight tools, and a search provider.

Full-text search, the same API on every backend
-----------------------------------------------
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
bm25 on SQLite, InnoDB's relevance on MySQL).

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
from sqlalchemy import Float, and_, func, literal_column, or_, select, text, true, type_coerce
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import aliased

from core.infra.db import Database
from core.corpus.documents import Document
from core.infra.models import Post
from core.research.relevance import TOKEN_PREFIX, DEFAULT_FLOOR, TopicScope, bm25, bm25_idf, coverage
from core.text.dates import parse_date, parse_time
from core.text.jieba_loader import get_jieba
from core.text.stopwords import FUNCTION_WORDS

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


def _is_mysql(db: Database) -> bool:
    return db.backend in ("mysql", "mariadb")


def _pg_query(terms: list[str]):
    """The tsquery matching any of ``terms`` (OR): each a phrase of the tokens the parser makes of it."""
    parts = [func.phraseto_tsquery(literal_column("'simple'::regconfig"), t) for t in terms]
    query = parts[0]
    for part in parts[1:]:
        query = query.op("||")(part)
    return query


def _pg_tsv():
    return literal_column(f"posts.{PG_TSV_COLUMN}")


def ensure_search_index(db: Database, *, force: bool = False) -> None:
    """Create the full-text index if it is missing (idempotent, safe from several processes), and
    segment rows written without ``content_seg``. Cheap after the first call for a Database."""
    if not force and db in _ready:
        return
    engine = db.require()
    if _is_mysql(db):
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
                if _is_mysql(db):
                    df = s.scalar(text("SELECT COUNT(*) FROM posts WHERE MATCH(content_seg) AGAINST(:t IN BOOLEAN MODE)"),
                                  {"t": t})
                elif db.backend == "postgresql":
                    df = s.scalar(select(func.count()).select_from(Post).where(_pg_tsv().op("@@")(_pg_query([t]))))
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


def _candidates(db: Database, terms: list[str], conds: list, order: str, limit: int) -> list[Candidate]:
    parent = aliased(Post)  # a comment's thread (the unique (platform, post_id) index finds it)
    cols = (Post.id, Post.content_seg, Post.platform, Post.kind, _hot_expr().label("hot"), Post.publish_time,
            parent.content_seg)
    on_parent = and_(Post.kind == "comment", parent.platform == Post.platform, parent.post_id == Post.parent_id)
    if _is_mysql(db):
        from sqlalchemy.dialects.mysql import match

        m = match(Post.content_seg, against=" ".join(terms)).in_boolean_mode()  # no operators: OR semantics
        stmt = select(*cols).outerjoin(parent, on_parent).where(m, *conds)
        ordering = [type_coerce(m, Float).desc()]
    elif db.backend == "postgresql":
        query, tsv = _pg_query(terms), _pg_tsv()
        stmt = select(*cols).outerjoin(parent, on_parent).where(tsv.op("@@")(query), *conds)
        ordering = [func.ts_rank(tsv, query).desc()]
    else:
        expr = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        fts = sql_table(FTS_TABLE, sql_column("rowid"))
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
