"""CSV / TSV rows for the importer, numbered by file line, where no broken row takes others with it.

    for line_no, record in csv_rows(binary, "utf-8", "csv"):   # record: a dict, or why the row is broken
        ...

`line_no` is the file line where a record starts (the header is line 1), as an editor or a
spreadsheet numbers it. Every problem is one error at its line, and the rows around it still come:

- an unterminated quote (`"broken row,2` with no closing quote): reading is strict, so the
  quote either runs to the end of the file or into some later, misplaced quote; both are reported
  at the line where the quote opened, and reading starts again on the next line, so the rows the
  quote would have swallowed are read as rows;
- a quote closed in the middle of a value (`"a"b`): reported, reading goes on at the next line;
- a wrong number of values: too many (non-empty), or too few, is an error for that record; if the
  record spanned several lines, its quote was most likely unterminated, and its lines are read
  again as rows;
- bytes that are not text in the file's encoding: the record holding them is reported and
  skipped, the next records are read as usual.

Blank lines come as empty dicts (the pipeline counts them as skipped).
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections import deque
from typing import IO, Any, Iterator

from core.corpus.importers import FIELD_ALIASES, MessageError, error_msg
from core.i18n import Msg

__all__ = ["csv_rows", "text_lines", "CsvFileError"]

_CONTENT_COLUMNS = FIELD_ALIASES["content"]
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")  # old Mac line ends: split after a CR not followed by LF


class CsvFileError(MessageError):
    """The file as a whole cannot be read as CSV (no header, no content column)."""


class _Lines:
    """The file's lines, numbered from 1, as the csv reader pulls them; the lines of the record
    being read are kept so that a broken record can be read again from its second line."""

    def __init__(self, source: Iterator[tuple[str, bool]]):
        self._source = source
        self._pending: deque[tuple[int, str, bool]] = deque()
        self._next_no = 1
        self.record: list[tuple[int, str, bool]] = []  # (line number, text, decodable)

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        if self._pending:
            item = self._pending.popleft()
        else:
            text, ok = next(self._source)  # StopIteration ends the csv reader
            item = (self._next_no, text, ok)
            self._next_no += 1
        self.record.append(item)
        return item[1]

    def reread_after_first(self) -> None:
        """The current record's lines but its first are read again."""
        self._pending.extendleft(reversed(self.record[1:]))


def text_lines(binary: IO[bytes], encoding: str, broken: list[int]) -> Iterator[tuple[str, bool]]:
    """(line, decodable) for each line of a file in `encoding`; an undecodable line comes with
    replacement characters. UTF-16 is read as a text stream: an undecodable line ends it, its
    number in `broken`."""
    if encoding.startswith("utf-16"):  # two bytes per newline: decoded as a text stream
        text = io.TextIOWrapper(binary, encoding=encoding, newline="")
        n = 0
        try:
            for line in text:
                n += 1
                yield line, True
        except UnicodeDecodeError:
            broken.append(n + 1)
        return
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    first = True
    for raw in iter(binary.readline, b""):  # b"\n" never occurs inside a UTF-8 or GB18030 character
        if first and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        first = False
        try:
            line, ok = raw.decode(codec), True
        except UnicodeDecodeError:
            line, ok = raw.decode(codec, "replace"), False
        if "\r" in line.rstrip("\r\n"):
            for piece in _LONE_CR.split(line):
                if piece:
                    yield piece, ok
        else:
            yield line, ok


def _quote_problem(exc: csv.Error, start: int, end: int) -> Msg:
    text = str(exc)
    if "unexpected end of data" in text:
        return error_msg("unterminated_quote", start=start)
    if "expected after" in text:
        if end > start:
            return error_msg("quote_closes_late", start=start, end=end)
        return error_msg("malformed_quoting")
    return error_msg("malformed_csv", error=text)


def csv_rows(binary: IO[bytes], encoding: str, kind: str) -> Iterator[tuple[int, Any]]:
    """(line number, record dict | why it is not one, a Msg) for each record of a CSV or TSV file.
    Raises CsvFileError when the header is missing or names no content column."""
    broken: list[int] = []
    lines = _Lines(text_lines(binary, encoding, broken))
    try:
        first = next(lines)
    except StopIteration:
        first = ""
    if not first.strip():
        raise CsvFileError(error_msg("no_header"))
    delimiter = "\t" if kind == "tsv" or first.count("\t") > first.count(",") else ","
    header = next(csv.reader([first], delimiter=delimiter))
    header = [h.replace("\ufeff", "").strip() or f"column_{i + 1}" for i, h in enumerate(header)]
    if not any(h.lower() in _CONTENT_COLUMNS for h in header):
        raise CsvFileError(error_msg("no_content_column", columns=", ".join(header)))
    width = len(header)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        lines.record = []
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            record = lines.record
            if not record:  # pragma: no cover - the reader fails only on lines it read
                break
            start, end = record[0][0], record[-1][0]
            yield start, _quote_problem(exc, start, end)
            lines.reread_after_first()
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            continue
        record = lines.record
        start, end = (record[0][0], record[-1][0]) if record else (0, 0)
        bad = [no for no, _, ok in record if not ok]
        if bad:
            yield start, error_msg("row_line_not_text", line=bad[0], encoding=encoding)
            continue
        if not cells or not any(c.strip() for c in cells):
            yield start, {}
            continue
        extra = len(cells) > width and any(c.strip() for c in cells[width:])
        if extra or len(cells) < width:
            if end > start:  # a quote that ran over several lines and broke the row: most likely unterminated
                yield start, error_msg("quote_runs_on", values=len(cells), columns=width, start=start, end=end)
                lines.reread_after_first()
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                continue
            yield start, error_msg("too_many_values" if extra else "too_few_values", values=len(cells), columns=width)
            continue
        yield start, dict(zip(header, cells))
    if broken:
        yield broken[0], error_msg("unreadable_rest")
