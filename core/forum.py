"""The forum: agents' paragraph summaries and the host's moderation, per run.

Messages are stored in the database (the source of truth), announced as events, and appended
to logs/forum.log in BettaFish's line format, `[HH:MM:SS] [SOURCE] content`, with newlines
escaped as `\\n` so one message is one line.

Agent messages are de-duplicated per run: a message whose text near-duplicates one that ANOTHER
engine already posted in the run (Jaccard similarity of character shingles, core.text.dedup, at
least DUPLICATE_SIMILARITY), or that repeats exactly (after normalisation: citation marks and
whitespace removed) one the SAME engine posted, is not stored, announced or logged: an event
`forum.duplicate_skipped` records the skip with the id of the earlier message, and post_message
returns None. An engine's own revision of a paragraph (a reflection summary close to its first
summary) is not a duplicate. The comparison reads only the run's last DEDUP_WINDOW agent messages
(their ids; a message's text is read and shingled once per process), so a post costs the same
however long the run's transcript is.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from core.infra.db import Database
from core.infra.events import EventLog
from core.infra.models import ForumMessage, utcnow
from core.infra.redact import redact
from core.text.dedup import jaccard, normalise, shingles
from core.infra.tracing import current_trace_id

SOURCES = ("QUERY", "MEDIA", "INSIGHT", "HOST", "SYSTEM")
TYPES = ("agent", "host", "system")
SENDERS = {"QUERY": "Query Engine", "MEDIA": "Media Engine", "INSIGHT": "Insight Engine", "HOST": "Forum Host",
           "SYSTEM": "System"}
MAX_CONTENT = 20_000
DUPLICATE_SIMILARITY = 0.8   # Jaccard of 3-character shingles at or above which another engine's message is a copy
DEDUP_WINDOW = 200           # the run's most recent agent messages a new one is compared with
DEDUP_MIN_CHARS = 20         # shorter normalised texts are duplicates only when identical

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


# --- de-duplication of agent messages ----------------------------------------------------------

class _Seen:
    """Normalised text and shingles of recent agent messages, by message id, per database and run: a
    message is read from the database and shingled once per process, not once per post."""

    MAX_RUNS = 32

    def __init__(self):
        # per Database object (ids are unique only within one database), its runs, most recent last
        self._dbs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.lock = threading.RLock()   # also serialises check-then-insert within the process

    def recent(self, db: Database, s, run_id: str) -> list[tuple[int, str, str, frozenset]]:
        """(id, source, normalised text, shingles) of the run's last DEDUP_WINDOW agent messages, newest first."""
        ids = s.execute(select(ForumMessage.id, ForumMessage.source)
                        .where(ForumMessage.run_id == run_id, ForumMessage.type == "agent")
                        .order_by(ForumMessage.id.desc()).limit(DEDUP_WINDOW)).all()
        runs = self._dbs.setdefault(db, OrderedDict())
        known = runs.setdefault(run_id, {})
        runs.move_to_end(run_id)
        while len(runs) > self.MAX_RUNS:
            runs.popitem(last=False)
        missing = [i for i, _ in ids if i not in known]
        if missing:
            for mid, src, content in s.execute(select(ForumMessage.id, ForumMessage.source, ForumMessage.content)
                                               .where(ForumMessage.id.in_(missing))):
                known[mid] = (src, normalise(content), frozenset(shingles(content)))
        window = {i for i, _ in ids}
        for stale in [i for i in known if i not in window]:
            del known[stale]
        return [(i, *known[i]) for i, _ in ids if i in known]


_seen = _Seen()


def find_duplicate(recent, source: str, content: str) -> tuple[int, str, float] | None:
    """(id, source, similarity) of the earlier message ``content`` duplicates, or None.

    ``recent``: (id, source, normalised text, shingles) of earlier messages, newest first. Another
    engine's message is a duplicate when the texts are near-duplicates (similarity at least
    DUPLICATE_SIMILARITY; identical for texts under DEDUP_MIN_CHARS); the same engine's only when
    the normalised texts are identical."""
    norm = normalise(content)
    if not norm:
        return None
    sh = shingles(content)
    for mid, src, other_norm, other_sh in recent:
        if other_norm == norm:
            return mid, src, 1.0
        if src == source or len(norm) < DEDUP_MIN_CHARS or len(other_norm) < DEDUP_MIN_CHARS:
            continue
        small, large = sorted((len(sh), len(other_sh)))
        if large and small / large < DUPLICATE_SIMILARITY:  # Jaccard <= |small| / |large|: cannot reach it
            continue
        sim = jaccard(sh, set(other_sh))
        if sim >= DUPLICATE_SIMILARITY:
            return mid, src, sim
    return None


def post_message(db: Database, events: EventLog | None, run_id: str, *, type: str, source: str, content: str,
                 sender: str | None = None, paragraph: int | None = None, log_dir: Path | None = None,
                 timestamp: datetime | None = None, trace_id: str | None = None,
                 dedup: bool = True) -> MessageView | None:
    """Store one forum message, announce it as an event, and append it to forum.log.

    An agent message that duplicates an earlier one of the run (see the module's note) is not
    posted: the event `forum.duplicate_skipped` records it and None is returned. ``dedup=False``
    posts it whatever it repeats."""
    if type not in TYPES:
        raise ValueError(f"forum message type must be one of {TYPES}")
    if source not in SOURCES:
        raise ValueError(f"forum message source must be one of {SOURCES}")
    content = redact(content.strip())[:MAX_CONTENT]
    ts = timestamp or utcnow()
    trace = trace_id if trace_id is not None else current_trace_id()
    if type == "agent" and dedup:
        with _seen.lock, db.session() as s:
            dup = find_duplicate(_seen.recent(db, s, run_id), source, content)
            if dup is not None:
                if events is not None:
                    events.emit("forum.duplicate_skipped", run_id=run_id, source="forum", trace_id=trace, session=s,
                                payload={"source": source, "duplicate_of": dup[0], "duplicate_source": dup[1],
                                         "similarity": round(dup[2], 3), "paragraph": paragraph,
                                         "chars": len(content)})
                return None
            view = _insert(s, events, run_id, type, source, content, sender, paragraph, ts, trace)
    else:
        with db.session() as s:
            view = _insert(s, events, run_id, type, source, content, sender, paragraph, ts, trace)
    if log_dir is not None:  # once stored
        append_forum_log(log_dir, forum_line(source, content, datetime.now()))
    return view


def _insert(s, events: EventLog | None, run_id: str, type: str, source: str, content: str, sender: str | None,
            paragraph: int | None, ts: datetime, trace: str) -> MessageView:
    row = ForumMessage(run_id=run_id, type=type, sender=sender or SENDERS[source], source=source,
                       content=content, paragraph=paragraph, trace_id=trace, timestamp=ts)
    s.add(row)
    s.flush()
    if events is not None:
        events.emit("forum.message", run_id=run_id, source="forum", trace_id=trace, session=s,
                    payload={"message_id": row.id, "type": type, "source": source, "paragraph": paragraph,
                             "chars": len(content)})
    return _view(row)


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
