"""A cursor over the event log with a bounded buffer: what a live panel keeps in session state.

Each poll asks only for events after the cursor, so a page that stays open all day costs
O(new events) per refresh, and the buffer never grows past `maxlen`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from core.infra.events import EventLog, EventRecord


@dataclass
class EventFeed:
    run_id: str | None = None
    cursor: int = 0
    maxlen: int = 200
    buffer: deque = field(default_factory=deque)
    polls: int = 0

    def __post_init__(self):
        self.buffer = deque(self.buffer, maxlen=self.maxlen)

    def start_at_latest(self, log: EventLog, backlog: int = 20) -> None:
        """Show the last `backlog` events, then only what is new."""
        recent = log.recent(run_id=self.run_id, limit=backlog)
        self.buffer.extend(recent)
        self.cursor = recent[-1].id if recent else (log.latest_id() if self.run_id is None else 0)

    def poll(self, log: EventLog, limit: int = 500) -> list[EventRecord]:
        self.polls += 1
        new, self.cursor = log.since(self.cursor, run_id=self.run_id, limit=limit)
        self.buffer.extend(new)
        return new
