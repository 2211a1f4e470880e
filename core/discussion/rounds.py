"""A forum transcript read one host round at a time, so a page of any length costs one round.

A round is the messages up to and including one host speech: round 1 runs from the run's first
message to its first host speech, round k from the message after the (k-1)-th speech to the k-th.
Messages after the last speech make an open round (the host has not spoken about them yet); a
transcript with no host speech at all (an import, a run still in its first round) is one open round.

Rounds are found by the ids of the host messages only: reading round k touches the run's host
ids between k and the nearer end (ids, not texts: none for the newest round) and the messages of
round k, at most ``limit`` of them (the newest).
Nothing here reads a whole transcript; the downloads (ui.forum_view) do that when asked.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from core.forum import ForumMessage, metered
from core.infra.db import Database
from core.infra.models import ForumMessage as ForumRow

ROUND_LIMIT = 200  # messages of one round read and shown at most (the newest); a round is ~FORUM_HOST_EVERY + 1


@dataclass(frozen=True)
class RoundPage:
    """One round of a run's transcript, as a page shows it."""
    run_id: str
    number: int                          # 1-based, oldest first
    total: int                           # rounds in the transcript when it was read
    messages: tuple[ForumMessage, ...]   # oldest first: the round's newest `limit` messages of the chosen sources
    closed: bool                         # ends with a host speech (False: the open round)
    left_out: int = 0                    # older messages of the round (of the chosen sources) beyond the limit

    @property
    def newest(self) -> bool:
        return self.number >= self.total


def _counts(s, run_id: str) -> tuple[int, int]:
    """(host speeches, rounds) of a run's transcript."""
    hosts, last_host = s.execute(select(func.count(), func.max(ForumRow.id))
                                 .where(ForumRow.run_id == run_id, ForumRow.type == "host")).one()
    last = s.scalar(select(func.max(ForumRow.id)).where(ForumRow.run_id == run_id))
    hosts = int(hosts or 0)
    if last is None:
        return 0, 0
    return hosts, hosts + (1 if last_host is None or last > last_host else 0)


def count_rounds(db: Database, run_id: str) -> int:
    """Rounds in a run's transcript: one per host speech, plus the open round if messages follow the last."""
    with db.session() as s:
        return _counts(s, run_id)[1]


def _host_id(s, run_id: str, k: int, hosts: int) -> int | None:
    """The id of the run's k-th host speech (1-based) of `hosts`, or None; counted from the nearer end,
    so the newest rounds (what a page opens at) skip no rows."""
    if k < 1 or k > hosts:
        return None
    stmt = select(ForumRow.id).where(ForumRow.run_id == run_id, ForumRow.type == "host")
    if k > hosts // 2:
        return s.scalar(stmt.order_by(ForumRow.id.desc()).offset(hosts - k).limit(1))
    return s.scalar(stmt.order_by(ForumRow.id).offset(k - 1).limit(1))


def round_page(db: Database, run_id: str, number: int | None = None, sources: tuple[str, ...] | None = None,
               limit: int = ROUND_LIMIT, prices=None) -> RoundPage | None:
    """Round ``number`` (1-based, oldest first; None or past the end: the newest) of a run's transcript,
    with only the messages of ``sources`` when given. None when the run has no messages. Messages
    carry their calls' metering (core.forum.metered), priced with ``prices`` (None: genai-prices')."""
    with db.session() as s:
        hosts, total = _counts(s, run_id)
        if total == 0:
            return None
        number = total if number is None else min(max(1, int(number)), total)
        lo = _host_id(s, run_id, number - 1, hosts) or 0
        hi = _host_id(s, run_id, number, hosts)
        where = [ForumRow.run_id == run_id, ForumRow.id > lo]
        if hi is not None:
            where.append(ForumRow.id <= hi)
        if sources:
            where.append(ForumRow.source.in_(sources))
        rows = s.scalars(select(ForumRow).where(*where).order_by(ForumRow.id.desc()).limit(limit)).all()
        left_out = 0
        if len(rows) == limit:
            left_out = (s.scalar(select(func.count()).select_from(ForumRow).where(*where)) or 0) - limit
        messages = tuple(metered(s, list(reversed(rows)), prices))
    return RoundPage(run_id, number, total, messages, hi is not None, max(0, left_out))
