"""Summary-node records out of BettaFish engine logs (both of its line shapes).

A forum message is what an engine's summary node wrote (`paragraph_latest_state`, or
`updated_paragraph_latest_state` after a reflection, which wins). The parser reads a log line by
line, so it serves the live tail (core.discussion.log_monitor: a few new lines per tick) and the
import (whole files, core.discussion.bettafish_import) alike. Shoal's own engines never come through here: they post to the forum
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
from dataclasses import dataclass

from core.forum import SOURCES
from core.llm.jsonrepair import JsonRepairError, extract_json

__all__ = ["ParsedSummary", "SummaryParser", "LOG_FILES", "SUMMARY_NODES", "MARKER", "looks_binary"]

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


def looks_binary(head: bytes) -> bool:
    """Whether a file's first bytes are binary data rather than a text log."""
    if b"\x00" in head:
        return True
    if not head:
        return False
    text = head.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\x1b\x0c")
    return (bad + control) > max(8, len(text) // 10)
