"""Importing posts from files: CSV / TSV / JSONL / JSON, with the encoding and format detected.

Each row goes through core.corpus.importers' pipeline (checked and normalised on its own, written in
batches); see that module for row numbers and idempotence. CSV and TSV are read by
core.corpus.csv_rows, where a broken row (an unterminated quote, a wrong number of values,
undecodable bytes) is one error at its line and never takes the rows after it.
"""
from __future__ import annotations

import codecs
import io
import json
import os
import time
from pathlib import Path
from typing import IO, Any, Iterator

from loguru import logger

from core.corpus.csv_rows import CsvFileError, csv_rows, text_lines
from core.corpus.importers import FIELD_ALIASES, ImportReport, MessageError, OnBatch, _import_rows, error_msg
from core.infra.db import Database

__all__ = ["FORMATS", "import_file"]

FORMATS = ("csv", "tsv", "jsonl", "json")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_SPREADSHEETS = {".xlsx", ".xls", ".xlsm", ".ods", ".numbers", ".parquet", ".zip", ".gz"}
_CONTENT_COLUMNS = FIELD_ALIASES["content"]
_SAMPLE = 64 * 1024


class _FileError(MessageError):
    """The file as a whole cannot be read (row 0 of the report)."""


def import_file(db: Database, path_or_fileobj: str | os.PathLike[str] | IO[Any], *, fmt: str | None = None,
                source: str = "import", default_platform: str = "unknown", on_batch: OnBatch | None = None,
                max_json_bytes: int | None = None) -> ImportReport:
    """Import a CSV (header row; all values read as text; UTF-8 with or without BOM, UTF-16 with BOM or
    GB18030), JSONL (one object per line) or JSON (a list of objects) file, chosen by `fmt` or by
    the file name's extension (else by the content). Never raises for a bad file: a file that
    cannot be read at all ends as one error (row 0); broken rows as one error each.

    CSV and JSONL are streamed (memory stays flat whatever the size); a JSON list is parsed whole, so
    `max_json_bytes` refuses a larger JSON file (the Data page's imports, on a small server).
    `on_batch`: see core.corpus.importers.import_records."""
    report = ImportReport(source=source)
    t0 = time.perf_counter()
    try:
        name, binary, close = _open_binary(path_or_fileobj)
    except _FileError as exc:
        report.add_error(0, exc.msg)
        return report
    try:
        sample = binary.read(_SAMPLE)
        if isinstance(sample, str):  # a text-mode file object
            binary = io.BytesIO((sample + binary.read()).encode("utf-8"))
            sample = binary.read(_SAMPLE)
        suffix = Path(name).suffix.lower()
        if not fmt and suffix in _SPREADSHEETS:
            raise _FileError(error_msg("spreadsheet", suffix=suffix))
        encoding = _detect_encoding(sample)
        kind = (fmt or _EXTENSIONS.get(suffix) or _sniff_format(sample, encoding)).lower()
        if kind in ("ndjson",):
            kind = "jsonl"
        if kind not in FORMATS:
            raise _FileError(error_msg("unsupported_format", format=kind))
        if kind in ("csv", "tsv"):
            rows = csv_rows(io.BufferedReader(_Rewound(binary, sample)), encoding, kind)
        elif kind == "jsonl":
            rows = _jsonl_rows(io.BufferedReader(_Rewound(binary, sample)), encoding)
        else:
            rows = _json_rows(io.TextIOWrapper(_Rewound(binary, sample), encoding=encoding), kind)
        if kind == "json" and max_json_bytes is not None and _size(binary) > max_json_bytes:
            raise _FileError(error_msg("json_too_large", mb=max_json_bytes // 2**20))
        _import_rows(db, rows, report, source=source, default_platform=default_platform, on_batch=on_batch)
    except (_FileError, CsvFileError) as exc:
        report.add_error(0, exc.msg)
    finally:
        if close:
            binary.close()
    report.seconds = time.perf_counter() - t0
    if report.error_count:
        logger.info("import {}: {}", name, report.summary())
    return report


def _size(binary: Any) -> int:
    """The stream's total size in bytes (0 when it cannot tell)."""
    try:
        return os.fstat(binary.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        size = getattr(binary, "size", None)
        return int(size) if isinstance(size, int) else 0


def _open_binary(src: Any) -> tuple[str, Any, bool]:
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise _FileError(error_msg("no_such_file", path=str(path)))
        try:
            return str(path), open(path, "rb"), True
        except OSError as exc:
            raise _FileError(error_msg("cannot_open", path=str(path), error=str(exc.strerror or exc))) from None
    if hasattr(src, "read"):
        return str(getattr(src, "name", "") or ""), src, False
    raise _FileError(error_msg("not_a_source", type=type(src).__name__))


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
        raise _FileError(error_msg("empty_file"))
    if b"\x00" in sample:
        raise _FileError(error_msg("binary_file"))
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
                # A few undecodable bytes in an otherwise good file: the rows holding them are reported
                # (core.corpus.csv_rows), the others imported.
                encoding = next((enc for enc in ("utf-8", "gb18030") if _mostly(sample, enc)), "")
                if not encoding:
                    raise _FileError(error_msg("unknown_encoding")) from None
    text = sample.decode(encoding, "ignore")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    if controls > max(2, len(text) // 100):
        raise _FileError(error_msg("binary_file"))
    return encoding


def _mostly(sample: bytes, encoding: str) -> bool:
    """True when most of the sample's lines decode: a few broken lines in a good file are row errors
    (the last line may be cut by the sample's end, and is not counted)."""
    lines = [l for l in sample.split(b"\n")[:-1] if l.strip()] or [sample]
    bad = sum(1 for line in lines if "\ufffd" in line.decode(encoding, "replace"))
    return bad * 2 < len(lines)


def _sniff_format(sample: bytes, encoding: str) -> str:
    head = sample.decode(encoding, "ignore").lstrip("\ufeff \r\n\t")
    if head.startswith("["):
        return "json"
    if head.startswith("{"):
        return "jsonl"
    return "csv"


def _jsonl_rows(binary: IO[bytes], encoding: str) -> Iterator[tuple[int, Any]]:
    broken: list[int] = []
    line_no = 0
    for line_no, (line, decodable) in enumerate(text_lines(binary, encoding, broken), 1):
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        if not decodable:
            yield line_no, error_msg("line_not_text", encoding=encoding)
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield line_no, error_msg("not_json", error=str(exc))
            continue
        yield line_no, obj if isinstance(obj, dict) else error_msg("not_a_json_object", type=type(obj).__name__)
    if broken:
        yield broken[0], error_msg("unreadable_rest")


def _json_rows(stream: IO[str], kind: str) -> Iterator[tuple[int, Any]]:
    try:
        data = json.load(stream)
    except UnicodeDecodeError:
        raise _FileError(error_msg("mixed_encodings")) from None
    except ValueError as exc:
        raise _FileError(error_msg("not_json", error=str(exc))) from None
    if isinstance(data, dict):
        lists = [v for k, v in data.items() if k in ("data", "records", "posts", "items", "rows") and
                 isinstance(v, list)]
        if lists:
            data = lists[0]
        elif any(k in data for k in _CONTENT_COLUMNS):
            data = [data]
    if not isinstance(data, list):
        raise _FileError(error_msg("not_a_json_list", type=type(data).__name__))
    for i, obj in enumerate(data, 1):
        yield i, obj if isinstance(obj, dict) else error_msg("not_a_json_object", type=type(obj).__name__)
