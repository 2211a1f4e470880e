"""Summary-node records out of BettaFish engine logs (both of its line shapes).

A forum message is what an engine's summary node wrote (`paragraph_latest_state`, or
`updated_paragraph_latest_state` after a reflection, which wins). The parser reads a log line by
line, so it serves the live tail (core.discussion.log_monitor: a few new lines per tick) and the
import (whole files) alike. Shoal's own engines never come through here: they post to the forum
directly. Line shapes it understands:

  BettaFish, old (the JSON may continue on the following lines, with or without a `[HH:MM:SS] ` prefix):
    [12:15:07] [FirstSummaryNode] 清理后的输出: {"paragraph_latest_state": "..."}
  BettaFish, new (a loguru line behind the clock prefix; the JSON continues on prefixed lines):
    [10:56:04] 2025-11-06 10:56:04.759 | INFO     | QueryEngine.nodes.summary_node:process_output:302 - 清理后的输出: {
    [10:56:04] "updated_paragraph_latest_state": "..."
    [10:56:04] }

Which node wrote a record: an old-style `[NodeName]` tag, else the loguru module (`…summary_node`,
`…search_node`, `…report_structure_node`, …), else a preceding progress phrase
(`正在生成首次段落总结` / `正在生成反思总结`). Records of other nodes (search, reflection planning,
report structure, formatting) are not messages. ERROR/CRITICAL lines and tracebacks are skipped,
and so is a JSON block that an error interrupted (the part before the error and the rest after it).
Broken JSON goes through core.llm.jsonrepair (unescaped inner quotes, trailing commas, truncation).

Every step is linear in the line's length (anchored patterns and str.find only), so lines of
10,000+ characters cost what they are long and nothing more.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time as dtime
from pathlib import Path

from loguru import logger

from core.forum import SOURCES, forum_line, post_message
from core.llm.jsonrepair import JsonRepairError, extract_json

__all__ = ["ParsedSummary", "SummaryParser", "ForumImport", "parse_bettafish_folder", "store_forum_import",
           "LOG_FILES", "SUMMARY_NODES", "MARKER"]

MARKER = "清理后的输出"
SUMMARY_NODES = ("FirstSummaryNode", "ReflectionSummaryNode")
PROGRESS_PHRASES = (("正在生成首次段落总结", "FirstSummaryNode"), ("正在生成反思总结", "ReflectionSummaryNode"))
# BettaFish's engine log files and the forum source each one speaks for (the import reads them in this order).
LOG_FILES = (("insight.log", "INSIGHT"), ("media.log", "MEDIA"), ("query.log", "QUERY"))
CONTENT_KEYS = ("updated_paragraph_latest_state", "paragraph_latest_state")
ERROR_LEVELS = ("ERROR", "CRITICAL")

MAX_BLOCK_CHARS = 4_000_000  # a JSON block larger than this is garbage, not a summary
MAX_BLOCK_LINES = 50_000
_LOCATION_WINDOW = 600       # where the loguru `name:function:line - ` separator may be
_MARKER_WINDOW = 400         # where `清理后的输出` may start in a message

_CLOCK = re.compile(r"\[(\d{2}:\d{2}:\d{2})\] ?")
_LOGURU = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,]\d{1,9})? *\| *([A-Z]{3,9}) *\|")
_TAG = re.compile(r"\[([A-Za-z][A-Za-z0-9_]{0,60})\] ?")
_SPECIAL = re.compile(r'[\\"{}\[\]]')
_LITERAL_NEWLINES = re.compile(r"\\r\\n|\\n|\\r")


@dataclass(frozen=True)
class ParsedSummary:
    source: str               # QUERY | MEDIA | INSIGHT
    content: str
    clock: str | None         # HH:MM:SS as written in the log
    paragraph: int | None
    node: str                 # FirstSummaryNode | ReflectionSummaryNode
    date: str | None = None   # YYYY-MM-DD when the line had a loguru header


@dataclass
class _Line:
    clock: str | None = None
    date: str | None = None
    level: str | None = None
    location: str | None = None
    body: str = ""
    header: bool = False   # a loguru header or an old-style [Tag]: a line that starts a new record


def _split_line(raw: str) -> _Line:
    """Strip the `[HH:MM:SS] ` prefix and a loguru header; what is left is the message body."""
    s = raw.rstrip("\r\n")
    if s.startswith("\ufeff"):
        s = s[1:]
    out = _Line()
    m = _CLOCK.match(s)
    if m:
        out.clock = m.group(1)
        s = s[m.end():]
    m = _LOGURU.match(s)
    if m:
        out.date, out.level, out.header = m.group(1), m.group(3), True
        out.clock = out.clock or m.group(2)
        rest = s[m.end():]
        # `… | name:function:line - message`: the separator follows a colon-separated location
        i = rest.find(" - ")
        while 0 <= i < _LOCATION_WINDOW:
            token = rest[:i].rsplit("|", 1)[-1].strip().rsplit(" ", 1)[-1]
            parts = token.split(":")
            if len(parts) >= 3 and parts[-1].isdigit():
                out.location, rest = token, rest[i + 3:]
                break
            i = rest.find(" - ", i + 1)
        s = rest
    elif _TAG.match(s):  # an old-style `[NodeName] …` line
        out.header = True
    out.body = s
    return out


def _module_kind(location: str | None) -> tuple[str | None, bool | None]:
    """(node name or None, is-summary or None when unknown) from a loguru location."""
    if not location:
        return None, None
    module = location.split(":", 1)[0].rsplit(".", 1)[-1].lower()
    if module == "summary_node":
        return None, True
    if module.endswith("_node") or module.endswith("_nodes"):
        return module, False  # search_node, report_structure_node, formatting_node, …
    return None, None


def _is_error(line: _Line) -> bool:
    if line.level in ERROR_LEVELS:
        return True
    b = line.body.lstrip()
    return b.startswith(("Traceback (most recent call last)", "[ERROR]", "ERROR:", "ERROR ", "[CRITICAL]",
                         "CRITICAL:"))


def _normalise(content: str) -> str:
    content = _LITERAL_NEWLINES.sub("\n", content)  # `\r\n` escaped twice survives json as text
    return content.replace("\r\n", "\n").replace("\r", "\n").strip()


class SummaryParser:
    """Feed lines of one engine log; get the summary-node records as they complete.

    The state between lines is small and JSON-serialisable (`snapshot()` / `restore()`), so a
    resumed live tail continues mid-block.
    """

    IDLE, BLOCK, SKIP_ERROR = "idle", "block", "skip_error"

    def __init__(self, source: str):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")
        self.source = source
        self.stats = {"records": 0, "other_nodes": 0, "errors": 0, "interrupted": 0, "unparseable": 0,
                      "no_content": 0}
        self._reset()
        self.hint: str | None = None

    def _reset(self) -> None:
        self.mode = self.IDLE
        self.buf: list[str] = []
        self.chars = 0
        self.meta: dict = {}
        self.depth = 0
        self.in_str = False
        self.opened = False

    # -- state ---------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        return {"mode": self.mode, "buf": list(self.buf), "meta": dict(self.meta), "depth": self.depth,
                "in_str": self.in_str, "opened": self.opened, "hint": self.hint}

    def restore(self, snap: dict | None) -> None:
        self._reset()
        if not snap:
            return
        self.mode = snap.get("mode", self.IDLE)
        self.buf = list(snap.get("buf", []))
        self.chars = sum(len(b) for b in self.buf)
        self.meta = dict(snap.get("meta", {}))
        self.depth = int(snap.get("depth", 0))
        self.in_str = bool(snap.get("in_str", False))
        self.opened = bool(snap.get("opened", False))
        self.hint = snap.get("hint")

    # -- input ---------------------------------------------------------------------------------
    def feed(self, line: str) -> list[ParsedSummary]:
        if "\n" in line:  # a caller handing over several lines at once
            out = []
            for part in line.split("\n"):
                out += self.feed(part)
            return out
        ln = _split_line(line)
        if _is_error(ln):
            if self.mode == self.BLOCK:
                self.stats["interrupted"] += 1
            if ln.header or self.mode != self.SKIP_ERROR:
                self.stats["errors"] += 1
            self._reset()
            self.mode = self.SKIP_ERROR
            return []
        starts = ln.header or MARKER in ln.body[:_MARKER_WINDOW] or self._progress(ln.body) is not None
        if self.mode == self.BLOCK:
            if starts and not self._continues(ln):
                out = self._finish()
                return out + self._start_or_note(ln)
            return self._append(ln.body)
        if self.mode == self.SKIP_ERROR:
            if not starts:
                return []  # traceback lines and the rest of the JSON the error interrupted
            self.mode = self.IDLE
        return self._start_or_note(ln)

    def flush(self) -> list[ParsedSummary]:
        """End of input: a block still open is salvaged (truncated JSON is closed by the repair)."""
        out = self._finish() if self.mode == self.BLOCK else []
        self._reset()
        return out

    # -- internals -----------------------------------------------------------------------------
    @staticmethod
    def _progress(body: str) -> str | None:
        head = body[:_MARKER_WINDOW]
        for phrase, node in PROGRESS_PHRASES:
            if phrase in head:
                return node
        return None

    @staticmethod
    def _continues(ln: _Line) -> bool:
        """A loguru-headed line inside a block whose message is JSON (old and new lines mixed)."""
        if not ln.header or MARKER in ln.body[:_MARKER_WINDOW]:
            return False
        b = ln.body.lstrip()
        return b[:1] in ('"', "}", "]", ",") and _TAG.match(b) is None

    def _start_or_note(self, ln: _Line) -> list[ParsedSummary]:
        body = ln.body
        k = body.find(MARKER, 0, _MARKER_WINDOW)
        if k < 0:
            node = self._progress(body)
            if node:
                self.hint = node
            return []
        tag_m = _TAG.match(body)
        tag = tag_m.group(1) if tag_m and tag_m.end() <= k + 1 else None
        node, summary = None, None
        if tag and tag in SUMMARY_NODES:
            node, summary = tag, True
        elif tag and tag.endswith("Node"):
            node, summary = tag, False
        else:
            mod_node, summary = _module_kind(ln.location)
            if summary is False:
                node = mod_node
        if summary is not False and node is None and self.hint:
            node = self.hint
        self.hint = None
        j = k + len(MARKER)
        while j < len(body) and body[j] in ":： \t":
            j += 1
        self._reset()
        self.mode = self.BLOCK
        self.meta = {"clock": ln.clock, "date": ln.date, "node": node, "skip": summary is False}
        return self._append(body[j:])

    def _append(self, text: str) -> list[ParsedSummary]:
        self.buf.append(text)
        self.chars += len(text) + 1
        if self.chars > MAX_BLOCK_CHARS or len(self.buf) > MAX_BLOCK_LINES:
            self.stats["unparseable"] += 1
            self._reset()
            return []
        if self._scan(text) or (self.in_str and text[:1] in "}]" and text.rstrip() in ("}", "]")):
            # balanced, or a top-level closer at column 0 while an odd unescaped quote upset the count
            return self._finish()
        return []

    def _scan(self, text: str) -> bool:
        """Track brace depth outside strings; True when the top-level value has closed."""
        depth, in_str, opened, escaped = self.depth, self.in_str, self.opened, -1
        for m in _SPECIAL.finditer(text):
            i = m.start()
            if i == escaped:
                continue
            c = text[i]
            if in_str:
                if c == "\\":
                    escaped = i + 1
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
                opened = True
            elif c in "}]":
                depth -= 1
                if opened and depth <= 0:
                    self.depth, self.in_str, self.opened = 0, False, True
                    return True
        self.depth, self.in_str, self.opened = depth, in_str, opened
        if not opened and text.strip() and text.lstrip()[:1] not in "{[":
            # prose after the marker, not JSON: let _finish decide on what is there
            return True
        return False

    def _finish(self) -> list[ParsedSummary]:
        meta, text = self.meta, "\n".join(self.buf)
        self._reset()
        if meta.get("skip"):
            self.stats["other_nodes"] += 1
            return []
        obj = self._decode(text)
        if obj is None:
            return []
        if not isinstance(obj, dict):
            self.stats["other_nodes"] += 1  # a report structure (a list of paragraphs)
            return []
        content = None
        for key in CONTENT_KEYS:
            value = obj.get(key)
            if isinstance(value, (dict, list)):
                value = json.dumps(value, ensure_ascii=False)
            if value is not None and str(value).strip():
                content = str(value)
                break
        if content is None:
            self.stats["no_content" if meta.get("node") is None else "other_nodes"] += 1
            return []
        node = meta.get("node") or ("ReflectionSummaryNode" if obj.get(CONTENT_KEYS[0]) else "FirstSummaryNode")
        paragraph = obj.get("paragraph")
        paragraph = paragraph if isinstance(paragraph, int) and not isinstance(paragraph, bool) else None
        self.stats["records"] += 1
        return [ParsedSummary(self.source, _normalise(content), meta.get("clock"), paragraph, node, meta.get("date"))]

    def _decode(self, text: str):
        s = text.strip()
        if not s:
            self.stats["unparseable"] += 1
            return None
        try:
            return json.loads(s, strict=False)
        except ValueError:
            pass
        try:
            return extract_json(s)
        except (JsonRepairError, RecursionError):
            self.stats["unparseable"] += 1
            return None


# ---------------------------------------------------------------------------------------------
# BettaFish import

@dataclass
class ForumImport:
    folder: str
    messages: list[ParsedSummary] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # file name -> messages found in it
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.messages)

    def lines(self) -> list[str]:
        """The transcript in forum.log format, one message per line, with each message's own clock."""
        return [forum_line(m.source, m.content, _clock_dt(m.clock)) for m in self.messages]

    def as_dict(self) -> dict:
        return {"folder": self.folder, "files": dict(self.files), "warnings": list(self.warnings),
                "error": self.error, "messages": [asdict(m) for m in self.messages]}


def _clock_dt(clock: str | None, day: str | None = None) -> datetime:
    try:
        t = datetime.strptime(clock or "00:00:00", "%H:%M:%S").time()
    except ValueError:
        t = dtime(0, 0, 0)
    try:
        d = date.fromisoformat(day) if day else date.today()
    except ValueError:
        d = date.today()
    return datetime.combine(d, t)


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    if not head:
        return False
    text = head.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\x1b\x0c")
    return (bad + control) > max(8, len(text) // 10)


def _parse_file(path: Path, source: str, warnings: list[str]) -> list[ParsedSummary]:
    name = path.name
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
            if _looks_binary(head):
                warnings.append(f"{name}: binary data, not a text log; skipped")
                return []
            fh.seek(0)
            parser = SummaryParser(source)
            out: list[ParsedSummary] = []
            for raw in fh:
                out += parser.feed(raw.decode("utf-8", "replace").rstrip("\r\n"))
            out += parser.flush()
    except OSError as exc:
        warnings.append(f"{name}: could not be read ({exc.strerror or exc})")
        return []
    st = parser.stats
    notes = []
    if st["errors"]:
        notes.append(f"{st['errors']} error record(s) skipped")
    if st["interrupted"]:
        notes.append(f"{st['interrupted']} JSON block(s) interrupted by an error skipped")
    if st["unparseable"]:
        notes.append(f"{st['unparseable']} unreadable JSON block(s) skipped")
    if not out:
        notes.insert(0, "no summary-node records")
    if notes:
        warnings.append(f"{name}: " + "; ".join(notes))
    return out


def parse_bettafish_folder(path) -> ForumImport:
    """Replay a BettaFish logs folder (insight.log, media.log, query.log; any subset) into a transcript.

    Never raises for bad input: a missing or empty folder, binary junk or only error lines give
    an empty transcript with `error` (and `warnings`) saying why."""
    folder = Path(path) if path is not None else Path("")
    result = ForumImport(str(folder))
    try:
        if not folder.exists():
            result.error = f"The folder {folder} does not exist."
            return result
        if not folder.is_dir():
            result.error = f"{folder} is not a folder; give the BettaFish logs folder."
            return result
        present = [(folder / name, source) for name, source in LOG_FILES if (folder / name).is_file()]
    except OSError as exc:
        result.error = f"The folder {folder} cannot be read ({exc.strerror or exc})."
        return result
    if not present:
        result.error = (f"No BettaFish engine logs in {folder}: expected insight.log, media.log or query.log.")
        return result
    tagged: list[tuple[str, int, ParsedSummary]] = []
    order = 0
    for file_path, source in present:
        msgs = _parse_file(file_path, source, result.warnings)
        result.files[file_path.name] = len(msgs)
        last_clock = ""
        for m in msgs:
            last_clock = m.clock or last_clock  # a message without a clock sorts with the one before it
            tagged.append((last_clock, order, m))
            order += 1
    tagged.sort(key=lambda t: (t[0], t[1]))
    result.messages = [m for _, _, m in tagged]
    if not result.messages:
        reasons = "; ".join(result.warnings) or "no summary-node records"
        result.error = f"No forum messages found in {folder} ({reasons})."
    return result


def store_forum_import(db, events, result: ForumImport, label: str) -> str:
    """Store an import as a completed run (kind "forum_import") with all its messages; returns the run id."""
    import secrets

    from core.infra.models import Run, utcnow
    from core.infra.tracing import new_trace_id

    run_id = secrets.token_hex(6)
    trace = new_trace_id()
    now = utcnow()
    with db.session() as s:
        s.add(Run(id=run_id, kind="forum_import", topic=(label or result.folder)[:2000], status="completed",
                  mode="offline", params={"source": "bettafish", "folder": result.folder, "files": result.files,
                                          "messages": len(result.messages), "warnings": result.warnings[:20]},
                  trace_id=trace, created_at=now, started_at=now, finished_at=now))
    # An import is a record of what BettaFish's engines said: every message of the folder is kept,
    # repeats included (dedup=False), so the run holds exactly the messages the folder has.
    stored = 0
    for m in result.messages:
        stored += post_message(db, events, run_id, type="agent", source=m.source, content=m.content,
                               paragraph=m.paragraph, timestamp=_clock_dt(m.clock, m.date) if m.clock else None,
                               trace_id=trace, dedup=False) is not None
    if events is not None:
        events.emit("forum.imported", run_id=run_id, source="forum", trace_id=trace,
                    payload={"messages": stored, "found": len(result.messages), "files": result.files})
    logger.info("imported {} of {} BettaFish forum messages from {} as run {}", stored, len(result.messages),
                result.folder, run_id)
    return run_id
