"""BettaFish's `forum.log` (ForumEngine's transcript: the engines' messages and the host's speeches),
and the day of each time-of-day clock in BettaFish's logs.

ForumEngine (ForumEngine/monitor.py, `write_to_forum_log`) writes one line per message, its newlines
escaped as `\\n`:

    [10:55:00] [SYSTEM] [1a2b3c4d] === ForumEngine 监控开始 - 2025-11-06 10:55:00 ===
    [10:56:04] [QUERY] [1a2b3c4d] 第一段总结……\\n第二段……
    [10:58:12] [HOST] [1a2b3c4d] 主持人发言……
    [10:59:00] [QUERY] 一条旧格式的消息（没有搜索会话ID）

The search-session tag (`[1a2b3c4d]`, 8 hex digits) is newer and may be missing or empty; the speaker
is upper-cased; a line with no speaker is ForumEngine's own note. A line without the `[HH:MM:SS]`
prefix continues the message before it (a copy whose newlines were not escaped); a `=== … ===` line
is a marker, never a message. SYSTEM markers that carry a date (`… - 2025-11-06 10:55:00 ===`,
also app.py's unprefixed `=== ForumEngine 系统初始化 - … ===`) give the day of the clocks after them.

Clocks carry only the time of day. `resolve_days` gives each one its date: a clock more than
ROLLOVER earlier than the one before it is on the next day (a clock change or a late write goes
back less than that), a known date (a dated marker, a loguru header) is used as it is, and the
rest count from the nearest known date, else from the file's modification day (the last line was
written that day).
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Sequence

from core.discussion.log_parse import ParsedSummary, looks_binary
from core.i18n import Msg

__all__ = ["FORUM_LOG", "FORUM_LOG_NODE", "ROLLOVER", "parse_forum_log", "resolve_days", "dated_messages",
           "file_day", "log_msg"]

FORUM_LOG = "forum.log"
FORUM_LOG_NODE = "forum.log"  # ParsedSummary.node of a message read from forum.log
ROLLOVER = timedelta(hours=1)
AGENTS = ("QUERY", "MEDIA", "INSIGHT")


def log_msg(key: str, **args) -> Msg:
    """What reading a BettaFish log found wrong (the catalogues' [log_import] section), shown later in the
    reader's language; the command line and stored runs take it in English."""
    return Msg(f"log_import.{key}", args)

_LINE = re.compile(r"\[(\d{2}):(\d{2}):(\d{2})\] ?(?:\[([^\[\]\n]{1,40})\] ?)?")
_SESSION = re.compile(r"\[[0-9A-Fa-f]{8}\] ?")
_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})")
_MARKER = re.compile(r"===.*===\s*$")


def _seconds(clock: str | None) -> int | None:
    if not clock:
        return None
    try:
        h, m, s = (int(x) for x in clock.split(":"))
    except ValueError:
        return None
    return h * 3600 + m * 60 + s if h < 24 and m < 60 and s < 60 else None


def file_day(path: Path) -> date:
    """The local day the file was last written (its last line's day); today when unknown."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime).date()
    except (OSError, ValueError, OverflowError):
        return date.today()


def resolve_days(entries: Sequence[tuple[str | None, str | None]], fallback: date, *,
                 fallback_first: bool = False) -> list[date]:
    """The date of each (clock, known date or None) entry, in file order (see the module's note).
    An entry without a clock is on the day of the one before it. With no known date, the last
    entry is on ``fallback`` (the first one with ``fallback_first``)."""
    offsets: list[int] = []
    anchors: list[tuple[int, int, date]] = []  # (entry index, day offset, its date)
    day, prev = 0, None
    for i, (clock, known) in enumerate(entries):
        secs = _seconds(clock)
        if secs is not None:
            if prev is not None and prev - secs > ROLLOVER.total_seconds():
                day += 1
            prev = secs
        if known:
            try:
                anchors.append((i, day, date.fromisoformat(known)))
            except ValueError:
                pass
        offsets.append(day)
    out: list[date] = []
    k = -1  # the last anchor at or before entry i
    for i, d in enumerate(offsets):
        while k + 1 < len(anchors) and anchors[k + 1][0] <= i:
            k += 1
        _, at, known_day = anchors[k] if k >= 0 else (anchors[0] if anchors else (0, 0 if fallback_first else day, fallback))
        out.append(known_day + timedelta(days=d - at))
    return out


def parse_forum_log(path: Path, warnings: list[Msg]) -> list[ParsedSummary]:
    """The messages of a BettaFish forum.log, each dated (ParsedSummary.date), in file order; HOST
    speeches have source "HOST". Problems go to `warnings`; never raises for bad input."""
    name = path.name
    try:
        with open(path, "rb") as fh:
            if looks_binary(fh.read(8192)):
                warnings.append(log_msg("binary", name=name))
                return []
            fh.seek(0)
            raw_lines = [raw.decode("utf-8", "replace").rstrip("\r\n") for raw in fh]
    except OSError as exc:
        warnings.append(log_msg("unreadable", name=name, error=str(exc.strerror or exc)))
        return []
    entries: list[tuple[str | None, str | None]] = []
    messages: list[tuple[int, str, str, list[str]]] = []  # (entry index, source, clock, content parts)
    other: dict[str, int] = {}
    current: list[str] | None = None  # the parts of the message a continuation line extends
    for line in raw_lines:
        if line.startswith("\ufeff"):
            line = line[1:]
        m = _LINE.match(line)
        if not m:
            text = line.strip()
            if _MARKER.match(text):
                current = None
                dated = _DATED.search(text)
                if dated:
                    entries.append((dated.group(2), dated.group(1)))
            elif current is not None:
                current.append(line)
            continue
        clock = ":".join(m.group(1, 2, 3))
        speaker = (m.group(4) or "").strip().upper()
        rest = line[m.end():]
        if speaker:
            s = _SESSION.match(rest)
            rest = rest[s.end():] if s else rest
        text = rest.strip()
        dated = _DATED.search(text) if speaker == "SYSTEM" or _MARKER.match(text) else None
        entries.append((clock, dated.group(1) if dated else None))
        current = None
        if speaker in AGENTS or speaker == "HOST":
            current = [rest]
            messages.append((len(entries) - 1, speaker, clock, current))
        elif speaker and speaker != "SYSTEM":
            other[speaker] = other.get(speaker, 0) + 1
    days = resolve_days(entries, file_day(path))
    out = []
    for index, source, clock, parts in messages:
        content = "\n".join(parts).replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "").strip()
        if content:
            out.append(ParsedSummary(source, content, clock, None, FORUM_LOG_NODE, days[index].isoformat()))
    if other:
        warnings.append(log_msg("other_speakers", name=name,
                                speakers=", ".join(f"{k}: {n}" for k, n in sorted(other.items()))))
    if not out:
        warnings.append(log_msg("no_forum_messages", name=name))
    return out


def dated_messages(msgs: Sequence[ParsedSummary], fallback: date, *, fallback_first: bool = False
                   ) -> list[ParsedSummary]:
    """Messages of one engine log with their day filled in (a loguru header's date is kept)."""
    days = resolve_days([(m.clock, m.date) for m in msgs], fallback, fallback_first=fallback_first)
    return [replace(m, date=d.isoformat()) for m, d in zip(msgs, days)]
