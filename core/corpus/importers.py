"""The import pipeline into the local corpus: records checked, normalised and written in batches.

The importers are core/corpus/import_files.py (CSV / JSONL / JSON files) and core/corpus/mindspider.py
(a MindSpider/MediaCrawler database); ``import_records`` takes records from anywhere. Every importer ends in ``import_records``'s pipeline: each record is checked and normalised on its
own (a broken row is reported with its row number and the good rows are kept), then written in
batches of ``BATCH_SIZE`` per transaction. A record is keyed by (platform, post id); importing
it again updates the stored post, or leaves it alone when nothing changed ("skipped"), so
re-importing a file is idempotent. The segmented search text is filled on the way in and the
full-text index follows (SQLite triggers; the MySQL FULLTEXT index updates itself).

Row numbers in ``ImportReport.errors``: for CSV the file line where the record starts (the header
is line 1, as an editor or a spreadsheet numbers it; see core/corpus/csv_rows.py); for JSONL the
line number; for JSON the position in the list (from 1); for
``import_records`` the position in the iterable (from 1); 0 means the whole file or source.
"""
from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Callable, Iterable, Mapping

from loguru import logger
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.corpus.search import PLATFORMS, ensure_search_index, index_text, normalize_platform
from core.infra.db import Database, explain
from core.i18n import Msg
from core.infra.models import Post, utcnow
from core.text.dates import parse_time

BATCH_SIZE = 500
MAX_ERRORS = 1000  # errors kept in the report; error_count counts them all
MAX_CONTENT_CHARS = 1_000_000
MAX_EXTRAS = 100  # extra columns kept per post
MAX_EXTRA_CHARS = 10_000  # per extra value


class MessageError(Exception):
    """An import problem that says why as a catalogue message (``msg``, shown in the reader's language);
    its text is the English."""

    def __init__(self, msg: Msg):
        self.msg = msg
        super().__init__(msg.render("en"))


class RecordError(MessageError, ValueError):
    """A record that cannot be imported; the message says why, for the report."""


def note_msg(key: str, **args: Any) -> Msg:
    """What an import adds beside its counts (the catalogues' [import_note] section)."""
    return Msg(f"import_note.{key}", args)


def error_msg(key: str, **args: Any) -> Msg:
    """Why a row or a file could not be imported (the catalogues' [import_error] section); text
    arguments (a library's or the database's words) are cut at 300 characters."""
    return Msg(f"import_error.{key}", {k: v[:300] if isinstance(v, str) else v for k, v in args.items()})


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    skipped: int = 0  # blank rows, and rows identical to the stored post
    errors: list[tuple[int, Msg]] = field(default_factory=list)  # (row, why): see the module docstring
    error_count: int = 0  # all errors, including those beyond MAX_ERRORS not kept in `errors`
    notes: list[Msg] = field(default_factory=list)  # what the import adds beside its counts (per-table rows, …)
    source: str = ""
    seconds: float = 0.0

    def add_error(self, row: int, message: Msg) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((int(row), message))

    def scrubbed(self, scrub: Callable[[str], str]) -> "ImportReport":
        """A copy with ``scrub`` applied to every text it shows: its errors' arguments and its notes (a
        database URL's password, which a driver's error may quote)."""
        return replace(self, errors=[(row, _scrub_msg(msg, scrub)) for row, msg in self.errors],
                       notes=[_scrub_msg(n, scrub) for n in self.notes])

    def error_texts(self, lang: str = "en") -> list[tuple[int, str]]:
        """The errors as (row, text) in ``lang`` (the command line's JSON, logs: English)."""
        return [(row, msg.render(lang)[:300]) for row, msg in self.errors]

    def note_texts(self, lang: str = "en") -> list[str]:
        return [note.render(lang) for note in self.notes]

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def as_dict(self, *, messages: bool = False) -> dict[str, Any]:
        """JSON-ready: ``errors`` as English text; with ``messages`` also ``error_messages``, the errors as
        catalogue messages, which from_dict types again (a job's stored result, shown in any language)."""
        out = {"imported": self.imported, "updated": self.updated, "skipped": self.skipped,
               "error_count": self.error_count, "errors": [list(e) for e in self.error_texts()],
               "notes": self.note_texts(), "source": self.source, "seconds": round(self.seconds, 3)}
        if messages:
            out["error_messages"] = [[row, msg.to_json()] for row, msg in self.errors]
            out["note_messages"] = [note.to_json() for note in self.notes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImportReport":
        """The report a job stored as its result (as_dict), typed again."""
        return cls(imported=int(data.get("imported", 0)), updated=int(data.get("updated", 0)),
                   skipped=int(data.get("skipped", 0)),
                   errors=_errors_from(data),
                   error_count=int(data.get("error_count", 0)), notes=_notes_from(data),
                   source=str(data.get("source", "")), seconds=float(data.get("seconds", 0.0)))

    def summary(self) -> str:
        text = f"{self.imported} imported, {self.updated} updated, {self.skipped} skipped, {self.error_count} errors"
        return text + (f" ({self.notes[0].render('en')})" if len(self.notes) == 1 else "")


def _scrub_msg(msg: Msg, scrub: Callable[[str], str]) -> Msg:
    return Msg(msg.key, {k: scrub(v) if isinstance(v, str) else _scrub_msg(v, scrub) if isinstance(v, Msg) else v
                         for k, v in msg.args.items()})


def _stored_msgs(messages: list | None, texts: list | None, as_text: Callable[[str], Msg]) -> list[Msg]:
    """A stored report's errors or notes: its messages, or (a result stored before they were) its texts
    as they are."""
    typed = [Msg.from_json(m) for m in messages or []]
    if typed and all(m is not None for m in typed):
        return typed  # type: ignore[return-value]
    return [as_text(str(text)) for text in texts or []]


def _errors_from(data: dict[str, Any]) -> list[tuple[int, Msg]]:
    errors = data.get("errors") or []  # (row, English text), beside the messages in the same order
    msgs = _stored_msgs([m for _, m in data.get("error_messages") or []], [text for _, text in errors],
                        lambda text: error_msg("text", text=text))
    return [(int(row), msg) for (row, _), msg in zip(errors, msgs)]


def _notes_from(data: dict[str, Any]) -> list[Msg]:
    return _stored_msgs(data.get("note_messages"), data.get("notes"), lambda text: note_msg("text", text=text))


# ----------------------------------------------------------------------------- value parsing

_COUNT_RE = re.compile(r"^(\d+(?:\.\d+)?)(万|w|亿|千|k|m|百万)?\+?$", re.IGNORECASE)
_MULTIPLIERS = {"万": 10_000, "w": 10_000, "亿": 100_000_000, "千": 1_000, "k": 1_000, "m": 1_000_000,
                "百万": 1_000_000}
_MAX_COUNT = 2**62


def parse_count(value: Any) -> int:
    """'1.2万' -> 12000, '3k' -> 3000, '1,234' -> 1234, '10万+' -> 100000, '' / None -> 0; ValueError otherwise."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot read {value!r} as a count")
        n = int(round(value))
    else:
        s = str(value).strip().replace(",", "").replace("，", "").replace(" ", "").replace("_", "")
        if s.lower() in ("", "-", "—", "null", "none", "nan", "n/a"):
            return 0
        m = _COUNT_RE.match(s)
        if m:
            n = int(round(float(m.group(1)) * _MULTIPLIERS.get((m.group(2) or "").lower(), 1)))
        else:
            try:
                f = float(s)
            except ValueError:
                raise ValueError(f"cannot read {str(value)[:30]!r} as a count") from None
            if not math.isfinite(f):
                raise ValueError(f"cannot read {str(value)[:30]!r} as a count")
            n = int(round(f))
    if n < 0:
        raise ValueError(f"a count cannot be negative: {value!r}")
    if n > _MAX_COUNT:
        raise ValueError(f"count too large: {str(value)[:30]!r}")
    return n


_SENTIMENT_LABELS = {
    "positive": 1.0, "pos": 1.0, "正面": 1.0, "积极": 1.0, "正向": 1.0, "好评": 1.0,
    "negative": 0.0, "neg": 0.0, "负面": 0.0, "消极": 0.0, "负向": 0.0, "差评": 0.0,
    "neutral": 0.5, "中性": 0.5, "中立": 0.5,
}


def parse_sentiment(value: Any) -> float | None:
    """A probability of positive in [0, 1]: numbers in [0, 1] or labels (positive/负面/neutral…); None otherwise."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, (int, float)):
        f = float(value)
    else:
        s = str(value).strip().lower()
        if s in _SENTIMENT_LABELS:
            return _SENTIMENT_LABELS[s]
        try:
            f = float(s)
        except ValueError:
            return None
    return f if math.isfinite(f) and 0.0 <= f <= 1.0 else None


_KINDS = {"post": "post", "comment": "comment", "评论": "comment", "reply": "comment", "回复": "comment",
          "帖子": "post", "note": "post", "video": "post", "article": "post", "answer": "post"}


# ----------------------------------------------------------------------------- records -> rows

# Recognised fields and the column names read for them, in priority order.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "content": ("content", "text", "内容", "正文"),
    "platform": ("platform", "平台"),
    "post_id": ("post_id", "id"),
    "title": ("title", "标题"),
    "author": ("author", "nickname", "作者"),
    "publish_time": ("publish_time", "published", "created_at", "create_time", "time", "date", "发布时间"),
    "likes": ("likes", "like_count", "liked_count", "点赞"),
    "comments": ("comments", "comment_count", "comments_count", "评论"),
    "shares": ("shares", "share_count", "shared_count", "reposts", "转发"),
    "views": ("views", "view_count", "play_count", "播放"),
    "url": ("url", "link"),
    "keyword": ("keyword", "source_keyword", "关键词"),
    "sentiment": ("sentiment",),
    "kind": ("kind",),
    "parent_id": ("parent_id",),
}
_COUNT_FIELDS = ("likes", "comments", "shares", "views")
_COMPARED = ("kind", "parent_id", "title", "content", "content_seg", "author", "publish_time", "likes", "comments",
             "shares", "views", "url", "keyword", "sentiment", "source", "extras")


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _text(v: Any, limit: int) -> str:
    if v is None:
        return ""
    s = v if isinstance(v, str) else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return s.replace("\x00", "").strip()[:limit]


def _json_safe(v: Any) -> Any:
    if isinstance(v, str):
        return v[:MAX_EXTRA_CHARS]
    if v is None or isinstance(v, (bool, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def stable_post_id(platform: str, content: str) -> str:
    return "h" + hashlib.sha1(f"{platform}\n{content}".encode("utf-8", "replace")).hexdigest()[:24]


def normalize_record(record: Mapping[str, Any], *, source: str = "import", default_platform: str = "unknown",
                     lenient: bool = False, extras: Mapping[str, Any] | None = None,
                     segment: bool = True) -> dict[str, Any]:
    """One record as the column values of a Post (without id/created_at). RecordError if it cannot be
    imported. `lenient` (database sources): unreadable counts become 0 and unreadable times None.
    `segment=False` leaves content_seg None for the writer to fill (only for new or changed text)."""
    rec: dict[str, Any] = {}
    for k, v in record.items():
        key = str(k).replace("\ufeff", "").strip().lower()
        if key and (key not in rec or _empty(rec[key])):
            rec[key] = v
    used: set[str] = set()

    def pick(name: str) -> Any:
        for alias in FIELD_ALIASES[name]:
            if alias in rec and not _empty(rec[alias]):
                used.add(alias)
                return rec[alias]
        return None

    raw_content = pick("content")
    if raw_content is None:
        raise RecordError(error_msg("no_content"))
    content = _text(raw_content, MAX_CONTENT_CHARS + 1)
    out_extras: dict[str, Any] = {}
    if len(content) > MAX_CONTENT_CHARS:
        content = content[:MAX_CONTENT_CHARS]
        out_extras["truncated"] = True
    platform = normalize_platform(pick("platform")) or normalize_platform(default_platform) or "unknown"
    title = _text(pick("title"), 2000)
    raw_id = pick("post_id")
    post_id = _text(raw_id, 10_000) if raw_id is not None else ""
    if not post_id:
        post_id = stable_post_id(platform, content)
    elif len(post_id) > 128:
        post_id = "h" + hashlib.sha1(post_id.encode("utf-8", "replace")).hexdigest()[:24]

    values: dict[str, Any] = {}
    for name in _COUNT_FIELDS:
        raw = pick(name)
        try:
            values[name] = parse_count(raw)
        except ValueError:
            if not lenient:
                raise RecordError(error_msg("bad_count", field=name, value=_text(raw, 30))) from None
            values[name] = 0
            out_extras[f"{name}_raw"] = _text(raw, 100)
    raw_time = pick("publish_time")
    try:
        publish_time = parse_time(raw_time)
    except ValueError as exc:
        if not lenient:
            raise RecordError(error_msg("bad_time", field="publish_time", error=str(exc))) from None
        publish_time = None
        out_extras["publish_time_raw"] = _text(raw_time, 100)
    raw_sentiment = pick("sentiment")
    sentiment = parse_sentiment(raw_sentiment)
    if sentiment is None and raw_sentiment is not None:
        out_extras["sentiment_raw"] = _text(raw_sentiment, 100)
    parent_id = _text(pick("parent_id"), 128) or None
    raw_kind = pick("kind")
    kind = _KINDS.get(_text(raw_kind, 32).lower()) if raw_kind is not None else None
    if kind is None:
        if raw_kind is not None:
            out_extras["kind_raw"] = _text(raw_kind, 100)
        kind = "comment" if parent_id else "post"

    author, url, keyword = _text(pick("author"), 255), _text(pick("url"), 4000), _text(pick("keyword"), 255)
    for k, v in {**rec, **(extras or {})}.items():
        if k not in used and not _empty(v) and len(out_extras) < MAX_EXTRAS:
            out_extras.setdefault(str(k)[:64], _json_safe(v))
    values.update(
        platform=platform, post_id=post_id, kind=kind, parent_id=parent_id, title=title, content=content,
        content_seg=index_text(title, content) if segment else None, author=author, publish_time=publish_time, url=url,
        keyword=keyword, sentiment=sentiment,
        source=_text(source, 32) or "import", extras=out_extras,
    )
    return values


# ----------------------------------------------------------------------------- writing


OnBatch = Callable[[ImportReport, int], None]


def import_records(db: Database, records: Iterable[Mapping[str, Any]], *, source: str = "import",
                   default_platform: str = "unknown", on_batch: OnBatch | None = None) -> ImportReport:
    """Import dict records (see FIELD_ALIASES for the recognised fields; others are kept in `extras`).
    Row numbers in the report count the records from 1. `on_batch(report, rows read)` is called after
    each batch is written (a job's progress; it may raise to stop the import, keeping what was written)."""
    report = ImportReport(source=source)
    t0 = time.perf_counter()
    _import_rows(db, enumerate(records, 1), report, source=source, default_platform=default_platform,
                 on_batch=on_batch)
    report.seconds = time.perf_counter() - t0
    return report


def _import_rows(db: Database, rows: Iterable[tuple[int, Any]], report: ImportReport, *, source: str,
                 default_platform: str = "unknown", on_batch: OnBatch | None = None) -> None:
    """rows: (row number, record dict | why the reader could not make one, a Msg)."""
    ensure_search_index(db)
    batch: list[tuple[int, dict[str, Any]]] = []
    row_no = 0
    for row_no, rec in rows:
        if isinstance(rec, Msg):  # the reader could not make a record of it
            report.add_error(row_no, rec)
            continue
        if not isinstance(rec, Mapping):
            report.add_error(row_no, error_msg("not_an_object", type=type(rec).__name__))
            continue
        if all(_empty(v) for v in rec.values()):
            report.skipped += 1
            continue
        try:
            values = normalize_record(rec, source=source, default_platform=default_platform, segment=False)
        except RecordError as exc:
            report.add_error(row_no, exc.msg)
            continue
        except Exception as exc:  # noqa: BLE001 - a surprising value must not end the import
            report.add_error(row_no, error_msg("unreadable_row", error=f"{type(exc).__name__}: {exc}"))
            continue
        batch.append((row_no, values))
        if len(batch) >= BATCH_SIZE:
            _flush(db, batch, report, "")
            batch = []
            if on_batch is not None:
                on_batch(report, row_no)
    if batch:
        _flush(db, batch, report, "")
    if on_batch is not None:
        on_batch(report, row_no)


def _flush(db: Database, batch: list[tuple[int, dict[str, Any]]], report: ImportReport, prefix: str) -> None:
    by_key: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    duplicates = 0
    for row_no, values in batch:
        key = (values["platform"], values["post_id"])
        if key in by_key:
            duplicates += 1  # the same post twice in a batch: the later row wins
        by_key[key] = (row_no, values)
    for attempt in range(2):
        try:
            counts = _write(db, by_key)
        except IntegrityError:
            if attempt == 0:  # another importer inserted one of these meanwhile: look again
                continue
            counts = None
        except SQLAlchemyError as exc:
            logger.warning("import batch failed ({}); writing its rows one by one", explain(exc))
            counts = None
        if counts is None:
            counts = [0, 0, 0]
            for key, (row_no, values) in by_key.items():
                try:
                    one = _write(db, {key: (row_no, values)})
                    counts = [a + b for a, b in zip(counts, one)]
                except SQLAlchemyError as exc:
                    report.add_error(row_no, error_msg("database_rejected", prefix=prefix, error=explain(exc)))
        report.imported += counts[0]
        report.updated += counts[1] + duplicates
        report.skipped += counts[2]
        return


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))  # MySQL FLOAT is single precision
    return a == b


def _write(db: Database, by_key: dict[tuple[str, str], tuple[int, dict[str, Any]]]) -> list[int]:
    """Insert new posts and update changed ones in one transaction: [inserted, updated, unchanged]."""
    by_platform: dict[str, list[str]] = {}
    for platform, post_id in by_key:
        by_platform.setdefault(platform, []).append(post_id)
    cols = [getattr(Post, c) for c in _COMPARED]
    inserted = updated = unchanged = 0
    with db.session() as s:
        existing: dict[tuple[str, str], Any] = {}
        for platform, ids in by_platform.items():
            for i in range(0, len(ids), 500):
                for row in s.execute(select(Post.id, Post.platform, Post.post_id, *cols)
                                     .where(Post.platform == platform, Post.post_id.in_(ids[i:i + 500]))):
                    existing[(row.platform, row.post_id)] = row
        inserts, updates = [], []
        now = utcnow()
        for key, (_row_no, values) in by_key.items():
            old = existing.get(key)
            if values.get("content_seg") is None:
                # Segmenting is most of an import's time: reuse the stored words when the text is unchanged.
                same_text = old is not None and old.title == values["title"] and old.content == values["content"]
                values = {**values, "content_seg": old.content_seg if same_text else
                          index_text(values["title"], values["content"])}
            if old is None:
                inserts.append({**values, "created_at": now})
            elif all(_same(getattr(old, c), values[c]) for c in _COMPARED):
                unchanged += 1
            else:
                updates.append({"id": old.id, **values})
        if inserts:
            s.execute(insert(Post), inserts)
            inserted = len(inserts)
        if updates:
            s.execute(update(Post), updates)
            updated = len(updates)
    return [inserted, updated, unchanged]


__all__ = [
    "BATCH_SIZE", "FIELD_ALIASES", "ImportReport", "PLATFORMS", "RecordError",
    "import_records", "normalize_record", "parse_count", "parse_sentiment", "stable_post_id",
]
