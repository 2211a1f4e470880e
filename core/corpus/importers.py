"""Importers into the local corpus: records (CSV / JSONL / JSON files) and a MindSpider/MediaCrawler database.

Every importer ends in ``import_records``'s pipeline: each record is checked and normalised on its
own (a broken row is reported with its row number and the good rows are kept), then written in
batches of ``BATCH_SIZE`` per transaction. A record is keyed by (platform, post id); importing
it again updates the stored post, or leaves it alone when nothing changed ("skipped"), so
re-importing a file is idempotent. The segmented search text is filled on the way in and the
full-text index follows (SQLite triggers; the MySQL FULLTEXT index updates itself).

Row numbers in ``ImportReport.errors``: for CSV the data rows counted from 1 (the header is not a
row); for JSONL the line number; for JSON the position in the list (from 1); for
``import_records`` the position in the iterable (from 1); 0 means the whole file or source.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from loguru import logger
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.corpus.search import PLATFORMS, ensure_search_index, index_text, normalize_platform
from core.infra.db import Database, explain
from core.infra.models import Post, utcnow
from core.infra.redact import mask_url
from core.text.dates import parse_time

BATCH_SIZE = 500
MAX_ERRORS = 1000  # errors kept in the report; error_count counts them all
MAX_CONTENT_CHARS = 1_000_000
MAX_EXTRAS = 100  # extra columns kept per post
MAX_EXTRA_CHARS = 10_000  # per extra value


class RecordError(ValueError):
    """A record that cannot be imported; the message says why, for the report."""


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    skipped: int = 0  # blank rows, and rows identical to the stored post
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0  # all errors, including those beyond MAX_ERRORS not kept in `errors`
    notes: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    def add_error(self, row: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((int(row), str(message)[:300]))

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated, "skipped": self.skipped,
                "error_count": self.error_count, "errors": [list(e) for e in self.errors], "notes": list(self.notes),
                "source": self.source, "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        text = f"{self.imported} imported, {self.updated} updated, {self.skipped} skipped, {self.error_count} errors"
        return text + (f" ({self.notes[0]})" if len(self.notes) == 1 else "")


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
        raise RecordError("no content: each row needs a non-empty 'content' or 'text'")
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
        except ValueError as exc:
            if not lenient:
                raise RecordError(f"{name}: {exc}") from None
            values[name] = 0
            out_extras[f"{name}_raw"] = _text(raw, 100)
    raw_time = pick("publish_time")
    try:
        publish_time = parse_time(raw_time)
    except ValueError as exc:
        if not lenient:
            raise RecordError(f"publish_time: {exc}") from None
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


def import_records(db: Database, records: Iterable[Mapping[str, Any]], *, source: str = "import",
                   default_platform: str = "unknown") -> ImportReport:
    """Import dict records (see FIELD_ALIASES for the recognised fields; others are kept in `extras`).
    Row numbers in the report count the records from 1."""
    report = ImportReport(source=source)
    t0 = time.perf_counter()
    _import_rows(db, enumerate(records, 1), report, source=source, default_platform=default_platform)
    report.seconds = time.perf_counter() - t0
    return report


def _import_rows(db: Database, rows: Iterable[tuple[int, Any]], report: ImportReport, *, source: str,
                 default_platform: str = "unknown") -> None:
    """rows: (row number, record dict | error message string)."""
    ensure_search_index(db)
    batch: list[tuple[int, dict[str, Any]]] = []
    for row_no, rec in rows:
        if isinstance(rec, str):
            report.add_error(row_no, rec)
            continue
        if not isinstance(rec, Mapping):
            report.add_error(row_no, f"expected an object with named fields, got {type(rec).__name__}")
            continue
        if all(_empty(v) for v in rec.values()):
            report.skipped += 1
            continue
        try:
            values = normalize_record(rec, source=source, default_platform=default_platform, segment=False)
        except RecordError as exc:
            report.add_error(row_no, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a surprising value must not end the import
            report.add_error(row_no, f"unreadable row: {type(exc).__name__}: {exc}")
            continue
        batch.append((row_no, values))
        if len(batch) >= BATCH_SIZE:
            _flush(db, batch, report, "")
            batch = []
    if batch:
        _flush(db, batch, report, "")


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
                    report.add_error(row_no, f"{prefix}database rejected the row: {explain(exc)}")
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


# ----------------------------------------------------------------------------- files

FORMATS = ("csv", "tsv", "jsonl", "json")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_SPREADSHEETS = {".xlsx", ".xls", ".xlsm", ".ods", ".numbers", ".parquet", ".zip", ".gz"}
_CONTENT_COLUMNS = FIELD_ALIASES["content"]
_SAMPLE = 64 * 1024


class _FileError(Exception):
    pass


def import_file(db: Database, path_or_fileobj: str | os.PathLike[str] | IO[Any], *, fmt: str | None = None,
                source: str = "import", default_platform: str = "unknown") -> ImportReport:
    """Import a CSV (header row; all values read as text; UTF-8 with or without BOM, UTF-16 with BOM or
    GB18030), JSONL (one object per line) or JSON (a list of objects) file, chosen by `fmt` or by
    the file name's extension (else by the content). Never raises for a bad file: a file that
    cannot be read at all ends as one error (row 0); broken rows as one error each."""
    report = ImportReport(source=source)
    t0 = time.perf_counter()
    try:
        name, binary, close = _open_binary(path_or_fileobj)
    except _FileError as exc:
        report.add_error(0, str(exc))
        return report
    try:
        sample = binary.read(_SAMPLE)
        if isinstance(sample, str):  # a text-mode file object
            binary = io.BytesIO((sample + binary.read()).encode("utf-8"))
            sample = binary.read(_SAMPLE)
        suffix = Path(name).suffix.lower()
        if not fmt and suffix in _SPREADSHEETS:
            raise _FileError(f"unsupported format {suffix}: save the sheet as CSV (UTF-8), or use JSONL or JSON")
        encoding = _detect_encoding(sample)
        kind = (fmt or _EXTENSIONS.get(suffix) or _sniff_format(sample, encoding)).lower()
        if kind in ("ndjson",):
            kind = "jsonl"
        if kind not in FORMATS:
            raise _FileError(f"unsupported format {kind!r}: use CSV, JSONL or JSON (save spreadsheets as CSV)")
        stream = io.TextIOWrapper(_Rewound(binary, sample), encoding=encoding, newline="" if kind in ("csv", "tsv")
                                  else None)
        rows = {"csv": _csv_rows, "tsv": _csv_rows, "jsonl": _jsonl_rows, "json": _json_rows}[kind](stream, kind)
        _import_rows(db, rows, report, source=source, default_platform=default_platform)
    except _FileError as exc:
        report.add_error(0, str(exc))
    finally:
        if close:
            binary.close()
    report.seconds = time.perf_counter() - t0
    if report.error_count:
        logger.info("import {}: {}", name, report.summary())
    return report


def _open_binary(src: Any) -> tuple[str, Any, bool]:
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise _FileError(f"no such file: {path}")
        try:
            return str(path), open(path, "rb"), True
        except OSError as exc:
            raise _FileError(f"cannot open {path}: {exc.strerror or exc}") from None
    if hasattr(src, "read"):
        return str(getattr(src, "name", "") or ""), src, False
    raise _FileError(f"cannot import from a {type(src).__name__}: give a path or a file object")


class _Rewound(io.RawIOBase):
    """The already-read sample followed by the rest of the stream (works for unseekable uploads)."""

    def __init__(self, rest: Any, head: bytes):
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._head.nbytes:
            n = min(len(buf), self._head.nbytes)
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buf))
        if not data:
            return 0
        buf[:len(data)] = data
        return len(data)


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if not sample.strip():
        raise _FileError("the file is empty")
    if b"\x00" in sample:
        raise _FileError("this is not a text file (it contains binary data): expected CSV, JSONL or JSON")
    try:
        sample.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and len(sample) == _SAMPLE:  # a character cut by the sample's end
            encoding = "utf-8"
        else:
            try:
                sample.decode("gb18030")
                encoding = "gb18030"
            except UnicodeDecodeError:
                raise _FileError("this is not a text file (not UTF-8 or GB18030): expected CSV, JSONL or JSON") \
                    from None
    text = sample.decode(encoding, "ignore")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    if controls > max(2, len(text) // 100):
        raise _FileError("this is not a text file (it contains binary data): expected CSV, JSONL or JSON")
    return encoding


def _sniff_format(sample: bytes, encoding: str) -> str:
    head = sample.decode(encoding, "ignore").lstrip("\ufeff \r\n\t")
    if head.startswith("["):
        return "json"
    if head.startswith("{"):
        return "jsonl"
    return "csv"


def _decode_guard(rows: Iterator[tuple[int, Any]], last_row: list[int]) -> Iterator[tuple[int, Any]]:
    try:
        for row in rows:
            last_row[0] = row[0]
            yield row
    except UnicodeDecodeError:
        yield last_row[0] + 1, "the file stops being readable text here (mixed encodings?); the rest was not read"


def _csv_rows(stream: IO[str], kind: str) -> Iterator[tuple[int, Any]]:
    def gen() -> Iterator[tuple[int, Any]]:
        first = stream.readline()
        if not first.strip():
            raise _FileError("no header row: the first line of a CSV file must name the columns")
        delimiter = "\t" if kind == "tsv" or first.count("\t") > first.count(",") else ","
        header = next(csv.reader([first], delimiter=delimiter))
        header = [h.replace("\ufeff", "").strip() or f"column_{i + 1}" for i, h in enumerate(header)]
        if not any(h.lower() in _CONTENT_COLUMNS for h in header):
            raise _FileError("no 'content' or 'text' column; the columns are: " + ", ".join(header)[:300])
        reader = csv.reader(stream, delimiter=delimiter)
        row_no = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row_no += 1
                yield row_no, f"malformed CSV: {exc}"
                continue
            row_no += 1
            if not cells or not any(c.strip() for c in cells):
                yield row_no, {}
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                yield row_no, f"{len(cells)} values but {len(header)} columns (an unquoted comma or tab?)"
                continue
            yield row_no, dict(zip(header, cells))

    return _decode_guard(gen(), [0])


def _jsonl_rows(stream: IO[str], kind: str) -> Iterator[tuple[int, Any]]:
    def gen() -> Iterator[tuple[int, Any]]:
        for line_no, line in enumerate(stream, 1):
            line = line.strip().lstrip("\ufeff")
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield line_no, f"not valid JSON: {exc}"
                continue
            yield line_no, obj if isinstance(obj, dict) else f"expected a JSON object, got {type(obj).__name__}"

    return _decode_guard(gen(), [0])


def _json_rows(stream: IO[str], kind: str) -> Iterator[tuple[int, Any]]:
    try:
        data = json.load(stream)
    except UnicodeDecodeError:
        raise _FileError("the file is not readable text (mixed encodings?)") from None
    except ValueError as exc:
        raise _FileError(f"not valid JSON: {exc}") from None
    if isinstance(data, dict):
        lists = [v for k, v in data.items() if k in ("data", "records", "posts", "items", "rows") and
                 isinstance(v, list)]
        if lists:
            data = lists[0]
        elif any(k in data for k in _CONTENT_COLUMNS):
            data = [data]
    if not isinstance(data, list):
        raise _FileError(f"expected a JSON list of objects, got {type(data).__name__}")
    for i, obj in enumerate(data, 1):
        yield i, obj if isinstance(obj, dict) else f"expected a JSON object, got {type(obj).__name__}"


# ----------------------------------------------------------------------------- MindSpider / MediaCrawler


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


def import_mindspider(db: Database, source_url: str, *, limit_per_table: int | None = None) -> ImportReport:
    """Import the platform tables (and their comment tables) of a MindSpider/MediaCrawler database.
    Missing tables are skipped with a note; columns are read by name with fallbacks, so schema
    drift is tolerated; counts like '1.2万' are parsed and unreadable ones become 0."""
    from sqlalchemy import column, create_engine, inspect, table as sql_table
    from sqlalchemy.engine import make_url

    report = ImportReport(source="mindspider")
    t0 = time.perf_counter()
    try:
        url = make_url(source_url)
        if url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername=f"{url.drivername}+pymysql")
        if url.get_backend_name() in ("mysql", "mariadb"):
            url = url.update_query_dict({"charset": url.query.get("charset", "utf8mb4")})
            engine = create_engine(url, connect_args={"connect_timeout": 5}, pool_pre_ping=True)
        else:
            if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
                raise FileNotFoundError(f"no SQLite database at {url.database!r}")
            engine = create_engine(url)
    except Exception as exc:  # noqa: BLE001 - ArgumentError, a missing driver, …
        report.add_error(0, f"cannot use the MindSpider database URL {mask_url(source_url)}: {explain(exc)}")
        return report
    shown = mask_url(source_url)
    try:
        try:
            insp = inspect(engine)
            present = set(insp.get_table_names())
        except SQLAlchemyError as exc:
            report.add_error(0, f"cannot read the MindSpider database {shown}: {explain(exc)}")
            return report
        found = 0
        for spec in MINDSPIDER_TABLES:
            if spec.name not in present:
                report.notes.append(f"{spec.name}: not in the database, skipped")
                continue
            columns = [c["name"] for c in insp.get_columns(spec.name)]
            if not any(c in columns for c in spec.id_cols) or not any(
                    c in columns for c in (*spec.content_cols, *MINDSPIDER_COLUMNS["title"])):
                report.notes.append(f"{spec.name}: no id or text column ({', '.join(columns)[:200]}), skipped")
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
                    _import_mindspider_rows(db, rows, report, spec)
            except SQLAlchemyError as exc:
                report.add_error(0, f"{spec.name}: reading stopped: {explain(exc)}")
            report.notes.append(f"{spec.name}: {report.imported + report.updated + report.skipped - before} rows")
        if not found:
            report.add_error(0, f"no MindSpider/MediaCrawler tables in {shown} (looked for "
                                f"{', '.join(t.name for t in MINDSPIDER_TABLES[:7])} and their comment tables)")
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - t0
    return report


def _import_mindspider_rows(db: Database, rows: Iterable[tuple[int, tuple[dict, dict]]], report: ImportReport,
                            spec: SourceTable) -> None:
    # normalize_record takes the extras separately, so a MediaCrawler column never shadows a field.
    def records() -> Iterator[tuple[int, Any]]:
        for i, (rec, extras) in rows:
            try:
                yield i, normalize_record(rec, source="mindspider", lenient=True, extras=extras, segment=False)
            except RecordError as exc:
                yield i, str(exc)

    _write_normalized(db, records(), report, label=spec.name)


def _write_normalized(db: Database, rows: Iterable[tuple[int, Any]], report: ImportReport, *, label: str) -> None:
    ensure_search_index(db)
    batch: list[tuple[int, dict[str, Any]]] = []
    for row_no, values in rows:
        if isinstance(values, str):
            report.add_error(row_no, f"{label} row {row_no}: {values}")
            continue
        batch.append((row_no, values))
        if len(batch) >= BATCH_SIZE:
            _flush(db, batch, report, f"{label}: ")
            batch = []
    if batch:
        _flush(db, batch, report, f"{label}: ")


__all__ = [
    "BATCH_SIZE", "FIELD_ALIASES", "FORMATS", "ImportReport", "MINDSPIDER_TABLES", "PLATFORMS", "RecordError",
    "import_file", "import_mindspider", "import_records", "normalize_record", "parse_count", "parse_sentiment",
    "stable_post_id",
]
