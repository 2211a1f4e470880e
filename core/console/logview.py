"""The log viewer's data side: tails the log files by byte offset and parses core.infra.logs.FORMAT.

    LogView(log_dir).poll()          reads what was appended since the last poll (O(new bytes))
    view.entries(engine=, min_level=, trace=, text=, limit=)   filtered, newest last
    view.frame(...)                  the same as a DataFrame

Each file (app.log and the engine logs query/media/insight/report/knowledge_query.log) has
its own LogTail and its own bounded buffer of `max_entries` entries. app.log holds every
record, so it answers unfiltered and level/trace/text queries; with an engine filter the
engine's own file is read instead when it is tailed, since it keeps a longer history of that
engine than app.log's shared buffer. The first poll starts `initial_bytes` before each file's
end, so opening the viewer shows recent history without reading whole files.

A line that does not parse (a traceback line, a corrupted or truncated line) is kept as a
raw entry (`parsed=False`) and never raises; it carries the fields of the record before it in
the same file (`continuation=True`: a traceback belongs to the record that logged it), or none
when there is no such record. Times are as written: the process's local time.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from core.infra.logs import ENGINE_SINKS
from core.infra.logtail import MAX_READ, LogTail

LINE_RE = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \| (?P<level>[A-Za-z]+) *\| (?P<trace>\S+) *\| "
    r"(?P<sink>\S+) *\| (?P<location>\S+:\S*:\d+) - (?P<message>.*)$")
LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
DEFAULT_FILES = ("app.log",) + tuple(f"{s}.log" for s in ENGINE_SINKS)
MAX_LINE_CHARS = 10_000  # one entry keeps at most this much text
MAX_PENDING = 1 * 2**20  # a "line" without a newline longer than this is cut and kept raw

ENTRY_COLUMNS = ["seq", "file", "time", "level", "trace", "sink", "location", "message", "parsed", "continuation",
                 "raw"]


@dataclass(frozen=True)
class LogEntry:
    seq: int
    file: str
    time: str | None
    level: str | None
    trace: str | None
    sink: str | None
    location: str | None
    message: str
    parsed: bool
    continuation: bool
    raw: str

    def as_dict(self) -> dict:
        return asdict(self)


def parse_line(line: str) -> dict | None:
    """The fields of one FORMAT line, or None when it does not parse. Never raises."""
    try:
        m = LINE_RE.match(line)
    except Exception:  # noqa: BLE001 - a str always matches or not; be safe with odd input
        return None
    if m is None:
        return None
    d = m.groupdict()
    d["trace"] = "" if d["trace"] == "-" else d["trace"]
    d["level"] = d["level"].upper()
    return d


def level_rank(level: str | None) -> int:
    return LEVELS.get((level or "").upper(), 0)


def make_entry(line: str, *, seq: int, file: str, previous: LogEntry | None = None) -> LogEntry:
    line = line[:MAX_LINE_CHARS]
    d = parse_line(line)
    if d is not None:
        return LogEntry(seq, file, d["time"], d["level"], d["trace"], d["sink"], d["location"], d["message"], True,
                        False, line)
    if previous is not None:
        return LogEntry(seq, file, previous.time, previous.level, previous.trace, previous.sink, previous.location,
                        line, False, True, line)
    return LogEntry(seq, file, None, None, None, None, None, line, False, False, line)


def matches(e: LogEntry, *, engine: str | None = None, min_level: str | None = None, trace: str | None = None,
            text: str | None = None) -> bool:
    if engine and (e.sink or "") != engine:
        return False
    if min_level and level_rank(e.level) < level_rank(min_level):
        return False
    if trace and not (e.trace or "").startswith(trace):
        return False
    if text and text.lower() not in e.raw.lower():
        return False
    return True


class LogView:
    def __init__(self, log_dir: str | Path, *, files: Iterable[str] | None = None, max_entries: int = 5000,
                 initial_bytes: int = 256 * 1024, max_read: int = MAX_READ):
        self.log_dir = Path(log_dir)
        self.max_entries = max(1, int(max_entries))
        self.max_read = max(1024, int(max_read))
        self.files = list(files) if files is not None else list(DEFAULT_FILES)
        self._tails: dict[str, LogTail] = {}
        self._buffers: dict[str, deque[LogEntry]] = {}
        self._previous: dict[str, LogEntry | None] = {}
        self._seq = 0
        self.problems: list[str] = []
        for name in self.files:
            tail = LogTail(self.log_dir / name)
            tail.seek_back(max(0, int(initial_bytes)))
            self._tails[name] = tail
            self._buffers[name] = deque(maxlen=self.max_entries)
            self._previous[name] = None

    def poll(self) -> int:
        """Read what every file gained since the last poll; returns how many entries were added."""
        added = 0
        for name, tail in self._tails.items():
            try:
                lines = tail.read_lines(self.max_read)
                if len(tail.pending) > MAX_PENDING:  # no newline for a megabyte: keep it as a cut raw line
                    lines.append(tail.pending[:MAX_LINE_CHARS].decode("utf-8", "replace"))
                    tail.pending = b""
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the others
                msg = f"{name}: {type(exc).__name__}: {exc}"[:300]
                if msg not in self.problems:
                    self.problems = (self.problems + [msg])[-20:]
                continue
            buf, prev = self._buffers[name], self._previous[name]
            for line in lines:
                if not line:
                    continue
                self._seq += 1
                entry = make_entry(line, seq=self._seq, file=name, previous=prev)
                if entry.parsed:
                    prev = entry
                buf.append(entry)
                added += 1
            self._previous[name] = prev
        return added

    def _source(self, engine: str | None, file: str | None) -> list[LogEntry]:
        if file is not None:
            return list(self._buffers.get(file, ()))
        if engine and f"{engine}.log" in self._buffers and self._buffers[f"{engine}.log"]:
            return list(self._buffers[f"{engine}.log"])
        if "app.log" in self._buffers:
            return list(self._buffers["app.log"])
        merged = [e for buf in self._buffers.values() for e in buf]
        return sorted(merged, key=lambda e: e.seq)

    def entries(self, *, engine: str | None = None, min_level: str | None = None, trace: str | None = None,
                text: str | None = None, file: str | None = None, limit: int = 500) -> list[LogEntry]:
        """The newest `limit` entries that pass every filter, oldest first.

        engine: the sink name (query, media, insight, report, knowledge_query, app); min_level:
        e.g. "WARNING" keeps WARNING, ERROR, CRITICAL; trace: a prefix; text: case-insensitive."""
        out: list[LogEntry] = []
        for e in reversed(self._source(engine, file)):
            if matches(e, engine=engine, min_level=min_level, trace=trace, text=text):
                out.append(e)
                if len(out) >= limit:
                    break
        out.reverse()
        return out

    def frame(self, **filters) -> pd.DataFrame:
        rows = [e.as_dict() for e in self.entries(**filters)]
        return pd.DataFrame(rows, columns=ENTRY_COLUMNS)

    def available(self) -> list[str]:
        """The tailed files that exist now."""
        return [n for n in self.files if (self.log_dir / n).exists()]

    def buffered(self) -> dict[str, int]:
        return {n: len(b) for n, b in self._buffers.items()}

    def engines(self) -> list[str]:
        """Sink names seen so far (for the engine filter)."""
        return sorted({e.sink for b in self._buffers.values() for e in b if e.sink})


def scan_file_for(path: Path, needle: str, *, max_bytes: int, max_lines: int) -> tuple[list[LogEntry], bool]:
    """Entries of the last `max_bytes` of `path` whose trace starts with `needle` (or, for lines that
    do not parse, whose text contains it). An index-free scan: one seek and one read of at most
    max_bytes. Returns (entries, truncated), truncated when the file is larger than max_bytes or
    more than max_lines matched (the newest are kept)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read(max_bytes)
    except OSError:
        return [], False
    lines = data.decode("utf-8", "replace").split("\n")
    if start > 0 and lines:
        lines = lines[1:]  # started mid-line
    out: deque[LogEntry] = deque(maxlen=max(1, max_lines))
    prev: LogEntry | None = None
    ours = False  # the last record belongs to the trace: its continuation lines (a traceback) do too
    matched = 0
    for i, line in enumerate(lines):
        line = line.rstrip("\r")
        if not line:
            continue
        looks_like_record = len(line) > 26 and line[4] == "-" and line[23:26] == " | "
        if looks_like_record or not ours:
            if needle not in line:
                if looks_like_record:
                    ours = False
                continue
            e = make_entry(line, seq=i, file=path.name)
            if e.parsed:
                prev, ours = e, (e.trace or "").startswith(needle)
        else:
            e = make_entry(line, seq=i, file=path.name, previous=prev)
        out.append(e)
        matched += 1
    return list(out), start > 0 or matched > len(out)
