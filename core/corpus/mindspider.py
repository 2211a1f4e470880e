"""Importing posts and comments from a MindSpider / MediaCrawler database (its content tables):
MySQL/MariaDB (pymysql), PostgreSQL (psycopg; BettaFish's newer default) or a SQLite file.

Rows go through core.corpus.importers' pipeline, like file imports.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy.exc import SQLAlchemyError

from core.corpus.importers import (BATCH_SIZE, ImportReport, RecordError, error_msg, note_msg, _empty, _flush, _text,
                                   normalize_record)
from core.corpus.search import ensure_search_index
from core.i18n import Msg
from core.infra.db import Database, explain
from core.infra.redact import mask_url

__all__ = ["MINDSPIDER_TABLES", "MINDSPIDER_COLUMNS", "SourceTable", "import_mindspider"]

@dataclass(frozen=True)
class SourceTable:
    name: str
    platform: str
    kind: str  # post | comment
    id_cols: tuple[str, ...]
    content_cols: tuple[str, ...]
    parent_cols: tuple[str, ...] = ()


_POST_CONTENT = ("content", "content_text", "desc", "note_desc", "description")
_COMMENT_CONTENT = ("content", "comment_text", "text")
MINDSPIDER_TABLES: tuple[SourceTable, ...] = (
    SourceTable("weibo_note", "weibo", "post", ("note_id", "mid", "id"), _POST_CONTENT),
    SourceTable("douyin_aweme", "douyin", "post", ("aweme_id", "id"), _POST_CONTENT),
    SourceTable("bilibili_video", "bilibili", "post", ("video_id", "bvid", "id"), _POST_CONTENT),
    SourceTable("xhs_note", "xhs", "post", ("note_id", "id"), _POST_CONTENT),
    SourceTable("zhihu_content", "zhihu", "post", ("content_id", "id"), _POST_CONTENT),
    SourceTable("tieba_note", "tieba", "post", ("note_id", "id"), _POST_CONTENT),
    SourceTable("kuaishou_video", "kuaishou", "post", ("video_id", "photo_id", "id"), _POST_CONTENT),
    SourceTable("weibo_note_comment", "weibo", "comment", ("comment_id", "id"), _COMMENT_CONTENT, ("note_id",)),
    SourceTable("douyin_aweme_comment", "douyin", "comment", ("comment_id", "id"), _COMMENT_CONTENT, ("aweme_id",)),
    SourceTable("bilibili_video_comment", "bilibili", "comment", ("comment_id", "id"), _COMMENT_CONTENT,
                ("video_id",)),
    SourceTable("xhs_note_comment", "xhs", "comment", ("comment_id", "id"), _COMMENT_CONTENT, ("note_id",)),
    SourceTable("zhihu_comment", "zhihu", "comment", ("comment_id", "id"), _COMMENT_CONTENT, ("content_id",)),
    SourceTable("tieba_comment", "tieba", "comment", ("comment_id", "id"), _COMMENT_CONTENT, ("note_id",)),
    SourceTable("kuaishou_video_comment", "kuaishou", "comment", ("comment_id", "id"), _COMMENT_CONTENT,
                ("video_id", "photo_id")),
)
# Column names read for each field, first present and non-empty wins (MediaCrawler's schema drifts).
MINDSPIDER_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "note_title", "video_title"),
    "author": ("nickname", "user_nickname", "user_name", "author"),
    "publish_time": ("create_time", "time", "created_time", "publish_time", "create_date_time", "pubdate"),
    "likes": ("liked_count", "like_count", "voteup_count", "comment_like_count", "digg_count"),
    "comments": ("comment_count", "comments_count", "video_comment", "total_replay_num", "sub_comment_count"),
    "shares": ("share_count", "shared_count", "video_share_count", "forward_count"),
    "views": ("video_play_count", "viewd_count", "play_count", "view_count", "video_view_count"),
    "url": ("note_url", "aweme_url", "content_url", "video_url", "url"),
    "keyword": ("source_keyword", "keyword"),
}
_NOT_EXTRAS = {"id", "add_ts", "last_modify_ts", "avatar", "user_avatar"}


def _mindspider_record(table: SourceTable, row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    used: set[str] = set()

    def first(cols: Iterable[str]) -> Any:
        for c in cols:
            if c in row and not _empty(row[c]):
                used.add(c)
                return row[c]
        return None

    rec: dict[str, Any] = {"platform": table.platform, "kind": table.kind}
    post_id = first(table.id_cols)
    if post_id is not None and table.kind == "comment":
        post_id = f"c{_text(post_id, 120)}"  # comment and post ids may share a number space on one platform
    rec["post_id"] = post_id
    for name, cols in MINDSPIDER_COLUMNS.items():
        rec[name] = first(cols)
    content = first(table.content_cols)
    if content is None and table.kind == "post":
        content, rec["title"] = rec.get("title"), None  # a video with only a title
    rec["content"] = content
    if table.kind == "comment":
        rec["parent_id"] = first(table.parent_cols)
    extras = {c: v for c, v in row.items() if c not in used and c not in _NOT_EXTRAS and not _empty(v)}
    extras["mindspider_table"] = table.name
    return rec, extras


def url_problem(url: str) -> str | None:
    """What is wrong with a typed MindSpider/MediaCrawler database URL, in a sentence; None when it
    looks usable (whether the server answers is for the import to find out)."""
    from sqlalchemy.engine import make_url

    url = (url or "").strip()
    form = "mysql+pymysql://user:password@host:3306/database or postgresql://user:password@host:5432/database"
    if not url:
        return "Enter the URL of the MindSpider/MediaCrawler MySQL or PostgreSQL database."
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme.startswith(("mysql", "mariadb", "postgres")):
        return f"That is not a MySQL or PostgreSQL URL. Use the form {form}."
    try:
        make_url(url)
    except Exception:  # noqa: BLE001 - whatever was typed (an unencoded @ or /, a port that is no number)
        return f"That URL is malformed. Use the form {form} (a password with @, : or / in it must be URL-encoded)."
    return None


def _source_url(url: str):
    """The SQLAlchemy URL to read a MindSpider database with: the driver Shoal ships for a URL that
    names none (mysql:// means pymysql; postgresql://, postgres:// or BettaFish's
    postgresql+asyncpg:// mean psycopg, as the import reads synchronously)."""
    from sqlalchemy.engine import make_url

    url = make_url(url)
    if url.drivername in ("mysql", "mariadb"):
        url = url.set(drivername=f"{url.drivername}+pymysql")
    elif url.drivername in ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _source_engine(url):
    from sqlalchemy import create_engine

    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb"):
        url = url.update_query_dict({"charset": url.query.get("charset", "utf8mb4")})
        return create_engine(url, connect_args={"connect_timeout": 5}, pool_pre_ping=True)
    if backend == "postgresql":
        return create_engine(url, connect_args={"connect_timeout": 5, "application_name": "shoal-import"},
                             pool_pre_ping=True)
    if backend == "sqlite" and not (url.database and Path(url.database).is_file()):
        raise FileNotFoundError(f"no SQLite database at {url.database!r}")
    return create_engine(url)


def import_mindspider(db: Database, source_url: str, *, limit_per_table: int | None = None,
                      platforms: Iterable[str] | None = None, since: datetime | None = None) -> ImportReport:
    """Import the platform tables (and their comment tables) of a MindSpider/MediaCrawler database.
    Missing tables are skipped with a note; columns are read by name with fallbacks, so schema
    drift is tolerated; counts like '1.2万' are parsed and unreadable ones become 0.
    ``platforms`` keeps only those platforms' tables; ``since`` (naive UTC) only rows published
    then or later (undated rows are left out too), each table's left-out rows counted in a note."""
    from sqlalchemy import column, inspect, table as sql_table

    report = ImportReport(source="mindspider")
    t0 = time.perf_counter()
    try:
        engine = _source_engine(_source_url(source_url))
    except Exception as exc:  # noqa: BLE001 - ArgumentError, a missing driver, …
        report.add_error(0, error_msg("mindspider_url", url=mask_url(source_url), error=explain(exc)))
        return report
    shown = mask_url(source_url)
    try:
        try:
            insp = inspect(engine)
            present = set(insp.get_table_names())
        except SQLAlchemyError as exc:
            report.add_error(0, error_msg("mindspider_unreadable", url=shown, error=explain(exc)))
            return report
        found = 0
        wanted = set(platforms) if platforms is not None else None
        for spec in MINDSPIDER_TABLES:
            if wanted is not None and spec.platform not in wanted:
                continue
            if spec.name not in present:
                report.notes.append(note_msg("table_missing", table=spec.name))
                continue
            columns = [c["name"] for c in insp.get_columns(spec.name)]
            if not any(c in columns for c in spec.id_cols) or not any(
                    c in columns for c in (*spec.content_cols, *MINDSPIDER_COLUMNS["title"])):
                report.notes.append(note_msg("table_unusable", table=spec.name, columns=", ".join(columns)[:200]))
                continue
            found += 1
            tbl = sql_table(spec.name, *[column(c) for c in columns])
            stmt = tbl.select()
            if "id" in columns:
                stmt = stmt.order_by(tbl.c.id)
            if limit_per_table is not None:
                stmt = stmt.limit(max(0, int(limit_per_table)))
            before = report.imported + report.updated + report.skipped
            try:
                with engine.connect() as conn:
                    result = conn.execution_options(stream_results=True, yield_per=1000).execute(stmt)
                    rows = ((i, _mindspider_record(spec, dict(m))) for i, m in enumerate(result.mappings(), 1))
                    _import_mindspider_rows(db, rows, report, spec, since)
            except SQLAlchemyError as exc:
                report.add_error(0, error_msg("mindspider_stopped", table=spec.name, error=explain(exc)))
            report.notes.append(note_msg("table_rows", table=spec.name,
                                         n=report.imported + report.updated + report.skipped - before))
        if not found:
            report.add_error(0, error_msg("mindspider_no_tables", url=shown,
                                          tables=", ".join(t.name for t in MINDSPIDER_TABLES[:7])))
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - t0
    return report


def _import_mindspider_rows(db: Database, rows: Iterable[tuple[int, tuple[dict, dict]]], report: ImportReport,
                            spec: SourceTable, since: datetime | None = None) -> None:
    older = 0

    # normalize_record takes the extras separately, so a MediaCrawler column never shadows a field.
    def records() -> Iterator[tuple[int, Any]]:
        nonlocal older
        for i, (rec, extras) in rows:
            try:
                values = normalize_record(rec, source="mindspider", lenient=True, extras=extras, segment=False)
            except RecordError as exc:
                yield i, exc.msg
                continue
            if since is not None and (values["publish_time"] is None or values["publish_time"] < since):
                older += 1
                continue
            yield i, values

    _write_normalized(db, records(), report, label=spec.name)
    if older:
        report.notes.append(note_msg("table_left_out", table=spec.name, n=older, since=f"{since:%Y-%m-%d %H:%M}"))


def _write_normalized(db: Database, rows: Iterable[tuple[int, Any]], report: ImportReport, *, label: str) -> None:
    ensure_search_index(db)
    batch: list[tuple[int, dict[str, Any]]] = []
    for row_no, values in rows:
        if isinstance(values, Msg):
            report.add_error(row_no, error_msg("table_row", table=label, row=row_no, error=values))
            continue
        batch.append((row_no, values))
        if len(batch) >= BATCH_SIZE:
            _flush(db, batch, report, f"{label}: ")
            batch = []
    if batch:
        _flush(db, batch, report, f"{label}: ")
