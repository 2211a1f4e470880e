"""The forum: agents' paragraph summaries and the host's moderation, per run.

Messages are stored in the database (the source of truth), announced as events, and appended
to logs/forum.log in BettaFish's line format, `[HH:MM:SS] [SOURCE] content`, with newlines
escaped as `\\n` so one message is one line.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from .db import Database
from .events import EventLog
from .models import ForumMessage, utcnow
from .redact import redact
from .tracing import current_trace_id

SOURCES = ("QUERY", "MEDIA", "INSIGHT", "HOST", "SYSTEM")
TYPES = ("agent", "host", "system")
SENDERS = {"QUERY": "Query Engine", "MEDIA": "Media Engine", "INSIGHT": "Insight Engine", "HOST": "Forum Host",
           "SYSTEM": "System"}
MAX_CONTENT = 20_000

_forum_log_lock = threading.Lock()


@dataclass(frozen=True)
class MessageView:
    id: int
    run_id: str
    type: str
    sender: str
    source: str
    content: str
    paragraph: int | None
    trace_id: str
    timestamp: datetime

    def as_dict(self) -> dict:
        d = asdict(self)
        d["timestamp"] = self.timestamp.isoformat()
        return d


def _view(m: ForumMessage) -> MessageView:
    return MessageView(m.id, m.run_id, m.type, m.sender, m.source, m.content, m.paragraph, m.trace_id, m.timestamp)


def forum_line(source: str, content: str, ts: datetime | None = None) -> str:
    """One message in BettaFish's forum.log format."""
    ts = ts or datetime.now()
    escaped = content.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f"[{ts:%H:%M:%S}] [{source}] {escaped}"


def append_forum_log(log_dir: Path, line: str) -> None:
    with _forum_log_lock:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "forum.log", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def post_message(db: Database, events: EventLog | None, run_id: str, *, type: str, source: str, content: str,
                 sender: str | None = None, paragraph: int | None = None, log_dir: Path | None = None,
                 timestamp: datetime | None = None, trace_id: str | None = None) -> MessageView:
    """Store one forum message, announce it as an event, and append it to forum.log."""
    if type not in TYPES:
        raise ValueError(f"forum message type must be one of {TYPES}")
    if source not in SOURCES:
        raise ValueError(f"forum message source must be one of {SOURCES}")
    content = redact(content.strip())[:MAX_CONTENT]
    ts = timestamp or utcnow()
    trace = trace_id if trace_id is not None else current_trace_id()
    with db.session() as s:
        row = ForumMessage(run_id=run_id, type=type, sender=sender or SENDERS[source], source=source,
                           content=content, paragraph=paragraph, trace_id=trace, timestamp=ts)
        s.add(row)
        s.flush()
        if events is not None:
            events.emit("forum.message", run_id=run_id, source="forum", trace_id=trace, session=s,
                        payload={"message_id": row.id, "type": type, "source": source, "paragraph": paragraph,
                                 "chars": len(content)})
        view = _view(row)
    if log_dir is not None:
        append_forum_log(log_dir, forum_line(source, content, datetime.now()))
    return view


def transcript(db: Database, run_id: str, *, after_id: int = 0, sources: tuple[str, ...] | None = None,
               limit: int = 1000) -> list[MessageView]:
    """A run's messages after `after_id`, oldest first: O(new messages) for a polling page."""
    stmt = select(ForumMessage).where(ForumMessage.run_id == run_id, ForumMessage.id > after_id)
    if sources:
        stmt = stmt.where(ForumMessage.source.in_(sources))
    with db.session() as s:
        return [_view(m) for m in s.scalars(stmt.order_by(ForumMessage.id).limit(limit))]


def transcript_tail(db: Database, run_id: str, n: int) -> list[MessageView]:
    """The newest `n` messages of a run, oldest first: a page's first view, without reading it all."""
    with db.session() as s:
        rows = s.scalars(select(ForumMessage).where(ForumMessage.run_id == run_id)
                         .order_by(ForumMessage.id.desc()).limit(n)).all()
    return [_view(m) for m in reversed(rows)]


def agents_since_last_host(db: Database, run_id: str) -> int:
    """Agent messages posted after the host last spoke (the host's cadence, for a page)."""
    with db.session() as s:
        last_host = s.scalar(select(func.max(ForumMessage.id)).where(ForumMessage.run_id == run_id,
                                                                   ForumMessage.type == "host")) or 0
        return s.scalar(select(func.count()).select_from(ForumMessage).where(
            ForumMessage.run_id == run_id, ForumMessage.type == "agent", ForumMessage.id > last_host)) or 0


def latest_host_speech(db: Database, run_id: str) -> str | None:
    with db.session() as s:
        return s.scalar(select(ForumMessage.content).where(ForumMessage.run_id == run_id, ForumMessage.type == "host")
                        .order_by(ForumMessage.id.desc()).limit(1))


def message_counts(db: Database, run_id: str) -> dict[str, int]:
    """Messages of a run by type: {"agent": n, "host": n, "system": n}."""
    with db.session() as s:
        rows = s.execute(select(ForumMessage.type, func.count()).where(ForumMessage.run_id == run_id)
                         .group_by(ForumMessage.type)).all()
    counts = {"agent": 0, "host": 0, "system": 0}
    counts.update({t: n for t, n in rows})
    return counts


def counts_by_source(db: Database, run_id: str) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(select(ForumMessage.source, func.count()).where(ForumMessage.run_id == run_id)
                         .group_by(ForumMessage.source)).all()
    return {src: n for src, n in rows}


def runs_with_messages(db: Database, limit: int = 50) -> list[tuple[str, int]]:
    """Run ids that have a forum transcript (including imported BettaFish logs), newest first."""
    with db.session() as s:
        rows = s.execute(select(ForumMessage.run_id, func.count(), func.max(ForumMessage.id))
                         .group_by(ForumMessage.run_id).order_by(func.max(ForumMessage.id).desc()).limit(limit)).all()
    return [(r, n) for r, n, _ in rows]
