"""The event log: every state change, with a global increasing id, read by cursor.

`since(cursor)` is the polled equivalent of Socket.IO push and SSE's Last-Event-ID: a range
scan on the primary key, so it costs O(new events) however long the history is.

Writes are batched (issue 11: one transaction per event was 6.4 s of 28 busy thread-seconds of
an offline run). `emit()` queues the event in a bounded FIFO and returns; one writer thread per
EventLog takes what is queued and inserts it in one transaction per batch (on `batch_size`
events, after `flush_interval`, on `flush()` and on `close()`). One writer inserting in FIFO
order means ids follow emit order: two events emitted one after the other by one thread (or
ordered by a lock or a join) get increasing ids, and a batch becomes visible whole.

`emit(..., session=s)` stays synchronous: the event is inserted in the caller's transaction and
commits (or rolls back) with the state change it describes. Such a transaction must not start
while this process still has earlier events queued, or the later event would get the lower id:
`ordered_session()` flushes the queue first, then opens the session (core.work.ledger uses it).
It cannot flush from inside the transaction: on SQLite the caller may already hold the write lock
the writer needs.

Readers in this process (`since`, `recent`, `latest_id`, `compact`) flush what any EventLog of this
process has queued for the same database before they read, so a page or test reads its own
writes; `flush()` does the same for direct SQL readers.

Visibility order across transactions: on SQLite writes are serialised by the database lock and
an id is handed out inside it, so ids commit in order. On MySQL, auto-increment ids are handed
out at insert and may commit out of order (the session path and other processes' writers run
beside this one), so a reader could see id 12 before id 11 commits. `since` therefore stops at a
gap in the ids while the row after the gap is younger than GAP_GRACE seconds; an older gap (a
rolled-back insert, compacted history) is stepped over. The writer stamps `ts` at emit time but
never more than MAX_TS_LAG before the write, so queueing cannot eat into that grace. No event is
skipped and none is repeated.

Failures: a database that is down or busy is retried with backoff, the batch kept at the front
of the queue (emitters block once `max_pending` events wait, and after `put_timeout` get
DatabaseUnavailable, as an unqueued emit did). A batch the database refuses is written row by
row: only the refused rows are dropped, each logged, counted in `stats()`.
"""
from __future__ import annotations

import atexit
import json
import os
import threading
import time
import weakref
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from loguru import logger
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.infra.db import Database, DatabaseUnavailable, explain
from core.infra.models import Event, utcnow
from core.infra.redact import redact, redact_obj
from core.infra.tracing import current_trace_id

GAP_GRACE = timedelta(seconds=2)
MAX_TS_LAG = timedelta(seconds=0.5)
MAX_BACKOFF = 2.0
READ_FLUSH_TIMEOUT = 2.0


@dataclass(frozen=True)
class EventRecord:
    id: int
    ts: datetime
    run_id: str | None
    job_id: str | None
    source: str
    type: str
    trace_id: str
    payload: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts.isoformat(), "run_id": self.run_id, "job_id": self.job_id,
                "source": self.source, "type": self.type, "trace_id": self.trace_id, "payload": self.payload}


@dataclass(frozen=True)
class EventLogStats:
    queued: int       # emitted through the queue since start
    written: int      # of those, committed
    rejected: int     # refused by the database row by row: dropped, each logged
    dropped_closed: int  # still queued when close() gave up: dropped, logged
    pending: int
    batches: int
    failures: int     # batch attempts that failed (then retried or split)
    last_error: str

    def as_dict(self) -> dict:
        return asdict(self)


def flush_queued(db, timeout: float | None = None) -> None:
    """Write what this process has queued for `db`'s database, through any EventLog: for readers
    that query the events table with their own SQL (the console's views) and must see this
    process's own emits."""
    for log in [x for x in list(_LIVE) if x.db.url == db.url]:
        if log._seq > log._done_seq and not log.flush(READ_FLUSH_TIMEOUT if timeout is None else timeout):
            logger.warning("event log: reading before {} queued events were written", log.pending)


def _record(row: Event) -> EventRecord:
    return EventRecord(row.id, row.ts, row.run_id, row.job_id, row.source, row.type, row.trace_id, row.payload or {})


def _is_transient(exc: BaseException) -> bool:
    """A database that is down or busy, as opposed to a row it refuses."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    return isinstance(exc, (DatabaseUnavailable, OSError, TimeoutError, OperationalError, InterfaceError,
                            DisconnectionError, PoolTimeout))


def _error_text(exc: BaseException) -> str:
    return explain(exc) if isinstance(exc, SQLAlchemyError) else redact(f"{type(exc).__name__}: {exc}")[:300]


class _Item:
    __slots__ = ("seq", "row", "id", "done", "want_id")

    def __init__(self, seq: int, row: dict, want_id: bool = False):
        self.seq, self.row, self.id, self.done, self.want_id = seq, row, None, False, want_id


_LIVE: "weakref.WeakSet[EventLog]" = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for log in list(_LIVE):
        try:
            log.close(timeout=1.0)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


class EventLog:
    def __init__(self, db: Database, max_per_run: int = 5000, *, batch_size: int = 500,
                 flush_interval: float = 0.05, max_pending: int = 20_000, put_timeout: float = 30.0,
                 idle_exit: float = 5.0):
        self.db = db
        self.max_per_run = max_per_run
        self.batch_size = max(1, int(batch_size))
        self.flush_interval = max(0.0, float(flush_interval))
        self.max_pending = max(1, int(max_pending))
        self.put_timeout = put_timeout
        self.idle_exit = idle_exit  # the writer thread ends when idle this long; the next emit starts one
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._urgent = 0  # flush() callers waiting: the writer does not wait for more events
        self._seq = 0        # last sequence number handed out
        self._done_seq = 0   # every item up to here is written or dropped
        self._queued = self._written = self._rejected = self._dropped_closed = 0
        self._batches = self._failures = 0
        self._last_error = ""
        _LIVE.add(self)

    # ------------------------------------------------------------------ writing
    def _row(self, type: str, run_id, job_id, source, payload, trace_id) -> dict:
        payload = redact_obj(payload or {})
        json.dumps(payload)  # an unserialisable payload fails here, in the caller, not in the writer
        return {"type": type, "run_id": run_id, "job_id": job_id, "source": source, "ts": utcnow(),
                "trace_id": trace_id if trace_id is not None else current_trace_id(), "payload": payload}

    def emit(self, type: str, *, run_id: str | None = None, job_id: str | None = None, source: str = "system",
             payload: dict | None = None, trace_id: str | None = None, session: Session | None = None,
             wait: bool = False) -> int | None:
        """Append one event. Inside `session` it is inserted now and commits with the state change it
        describes (returns its id). Otherwise it is queued for the writer: returns None, or with
        `wait=True` waits until it is written and returns its id."""
        self.db.require()
        row = self._row(type, run_id, job_id, source, payload, trace_id)
        if session is not None:
            # Synchronous on purpose: the event must commit or roll back with the caller's change.
            obj = Event(**row)
            session.add(obj)
            session.flush()
            return obj.id
        item = self._enqueue(row, wait)
        if item is None:  # closed: written now, after everything close() flushed
            with self.db.require().begin() as conn:
                return self._insert_rows(conn, [row])[0]
        if wait:
            if not self._wait_for(item.seq, self.put_timeout):
                raise DatabaseUnavailable(f"event not written in {self.put_timeout:g} s: {self._last_error or 'busy'}")
            return item.id
        return None

    def _enqueue(self, row: dict, want_id: bool = False) -> _Item | None:
        with self._cond:
            self._after_fork()
            if self._closed:
                return None
            me = threading.current_thread() is self._thread
            deadline = time.monotonic() + (self.put_timeout or 0)
            while len(self._queue) >= self.max_pending and not me:  # the writer itself never blocks on itself
                self._ensure_writer()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DatabaseUnavailable(f"the event log is {len(self._queue)} events behind: "
                                              f"{self._last_error or 'the database is not keeping up'}")
                self._cond.wait(min(remaining, 0.5))
            self._seq += 1
            item = _Item(self._seq, row, want_id)
            self._queue.append(item)
            self._queued += 1
            self._ensure_writer()
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
            return item

    def _after_fork(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's thread and queue are not ours
            self._pid, self._thread = os.getpid(), None
            self._queue.clear()
            self._done_seq = self._seq

    def _ensure_writer(self) -> None:
        """Start the writer thread if none runs (caller holds self._cond)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shoal-events", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event queued before this call is written (or, refused, dropped and
        logged). False if `timeout` passed first."""
        with self._cond:
            target = self._seq
        return self._wait_for(target, timeout)

    def _wait_for(self, seq: int, timeout: float | None) -> bool:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        with self._cond:
            if self._done_seq >= seq:
                return True
            self._urgent += 1
            self._cond.notify_all()
            try:
                while self._done_seq < seq:
                    if self._thread is None or not self._thread.is_alive():
                        if self._closed or not self._queue:
                            return self._done_seq >= seq
                        self._ensure_writer()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, 0.5))
                return True
            finally:
                self._urgent -= 1

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self, timeout: float = 10.0) -> bool:
        """Write everything queued (bounded by `timeout`) and stop the writer. Events emitted later
        are written synchronously, one transaction each. True when nothing was dropped."""
        ok = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.1, min(timeout, 2.0)))
        with self._cond:
            if self._queue and (self._thread is None or not self._thread.is_alive()):
                lost = len(self._queue)
                self._dropped_closed += lost
                logger.error("event log closed with {} events unwritten: {}", lost, self._last_error or "timeout")
                for item in self._queue:
                    item.done = True
                self._done_seq = self._seq
                self._queue.clear()
                self._cond.notify_all()
        _LIVE.discard(self)
        return ok and not self._dropped_closed

    def stats(self) -> EventLogStats:
        with self._cond:
            return EventLogStats(self._queued, self._written, self._rejected, self._dropped_closed, len(self._queue),
                                 self._batches, self._failures, self._last_error)

    @contextmanager
    def ordered_session(self) -> Iterator[Session]:
        """A session for state changes that emit events (`emit(..., session=s)`): what this process
        queued before is written first, so the session's events get higher ids than events emitted
        before it (flushing from inside would wait on a lock the caller may hold)."""
        if not self.flush(READ_FLUSH_TIMEOUT * 5):
            logger.warning("event log behind before a state change: its events may sort before older ones")
        with self.db.session() as s:
            yield s

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        backoff = 0.0
        idle_since = time.monotonic()
        while True:
            with self._cond:
                if threading.current_thread() is not self._thread:
                    return  # replaced (after a fork)
                if backoff:
                    self._cond.wait(backoff)
                while not self._queue:
                    if self._closed or time.monotonic() - idle_since >= self.idle_exit:
                        self._thread = None
                        self._cond.notify_all()
                        return
                    self._cond.wait(min(0.5, self.idle_exit))
                # Wait a moment for more events, unless a batch is full or someone waits for these.
                if self.flush_interval and not backoff:
                    end = time.monotonic() + self.flush_interval
                    while (len(self._queue) < self.batch_size and not self._urgent and not self._closed
                           and (left := end - time.monotonic()) > 0):
                        self._cond.wait(left)
                batch = [self._queue[i] for i in range(min(self.batch_size, len(self._queue)))]
            try:
                written, rejected, error = self._write(batch)
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive anything
                written, rejected, error = 0, 0, _error_text(exc)
            with self._cond:
                if self._closed and len(self._queue) < written + rejected:
                    return  # close() gave up on these and accounted for them
                for _ in range(written + rejected):
                    item = self._queue.popleft()  # only this thread removes from the front: these are `batch`
                    item.done = True
                if written + rejected:
                    self._done_seq = batch[written + rejected - 1].seq
                    self._batches += 1
                self._written += written
                self._rejected += rejected
                if error:
                    self._failures += 1
                    self._last_error = error
                self._cond.notify_all()
            if error and written + rejected < len(batch):
                if self._closed:
                    return  # close() reports what is left
                if backoff == 0.0 or self._failures % 20 == 1:
                    logger.warning("event log: writing {} events failed, retrying: {}", len(batch), error)
                backoff = min(MAX_BACKOFF, backoff * 2 or 0.05)
            else:
                backoff = 0.0
            idle_since = time.monotonic()

    def _returning(self) -> bool:
        return bool(getattr(self.db.engine.dialect, "insert_executemany_returning_sort_by_parameter_order", False))

    def _insert_rows(self, conn, rows: list[dict], want_ids: bool = True) -> list[int | None]:
        """One INSERT for the batch (a DBAPI executemany). Ids come back only when someone waits for
        them (`emit(wait=True)`): RETURNING in parameter order makes SQLite insert row by row."""
        if not want_ids:
            conn.execute(insert(Event), rows)
            return [None] * len(rows)
        if self._returning():
            return list(conn.execute(insert(Event).returning(Event.id, sort_by_parameter_order=True), rows).scalars())
        return [conn.execute(insert(Event), row).inserted_primary_key[0] for row in rows]

    def _write(self, batch: list[_Item]) -> tuple[int, int, str]:
        """(written, rejected, error) for a prefix of `batch`: all in one transaction, unless the
        database refuses particular rows, which are then written one by one and the bad ones dropped."""
        now = utcnow()
        rows = []
        for item in batch:
            row = item.row
            if now - row["ts"] > MAX_TS_LAG:  # see the module doc: the cursor's gap grace counts from ts
                row = {**row, "ts": now - MAX_TS_LAG}
            rows.append(row)
        try:
            with self.db.require().begin() as conn:
                ids = self._insert_rows(conn, rows, any(item.want_id for item in batch))
            for item, id_ in zip(batch, ids):
                item.id = id_
            return len(batch), 0, ""
        except Exception as exc:  # noqa: BLE001
            if _is_transient(exc):
                return 0, 0, _error_text(exc)
            first_error = _error_text(exc)
        written = rejected = 0
        for item, row in zip(batch, rows):
            try:
                with self.db.engine.begin() as conn:
                    item.id = self._insert_rows(conn, [row], item.want_id)[0]
                written += 1
            except Exception as exc:  # noqa: BLE001
                if _is_transient(exc):
                    return written, rejected, _error_text(exc)
                rejected += 1
                logger.error("event {} (run {}) refused by the database, dropped: {}", row["type"], row["run_id"],
                             _error_text(exc))
        return written, rejected, first_error

    # ------------------------------------------------------------------ reading
    def _read_own_writes(self) -> None:
        """Flush what this process queued for this database, through this EventLog or another one
        (a page or test may read with its own EventLog beside the supervisor's)."""
        for log in [self, *(x for x in list(_LIVE) if x is not self and x.db.url == self.db.url)]:
            if log._seq > log._done_seq and not log.flush(READ_FLUSH_TIMEOUT):
                logger.warning("event log: reading before {} queued events were written", log.pending)

    def since(self, cursor: int = 0, *, run_id: str | None = None, types: Iterable[str] | None = None,
              limit: int = 500) -> tuple[list[EventRecord], int]:
        """Events after `cursor` (oldest first) and the cursor to pass next time."""
        self._read_own_writes()
        stmt = select(Event).where(Event.id > cursor)
        if run_id is not None:
            stmt = stmt.where(Event.run_id == run_id)
        if types:
            stmt = stmt.where(Event.type.in_(list(types)))
        stmt = stmt.order_by(Event.id).limit(limit)
        with self.db.session() as s:
            rows = s.scalars(stmt).all()
        if not rows:
            return [], cursor
        filtered = run_id is not None or bool(types)
        out: list[EventRecord] = []
        expected = cursor + 1
        young = utcnow() - GAP_GRACE
        for row in rows:
            # With a filter, ids are not contiguous by design; only unfiltered reads check gaps.
            if not filtered and row.id != expected and row.ts > young and cursor > 0:
                break
            out.append(_record(row))
            expected = row.id + 1
        new_cursor = out[-1].id if out else cursor
        return out, new_cursor

    def latest_id(self) -> int:
        self._read_own_writes()
        with self.db.session() as s:
            return s.scalar(select(func.max(Event.id))) or 0

    def recent(self, *, run_id: str | None = None, limit: int = 100) -> list[EventRecord]:
        self._read_own_writes()
        stmt = select(Event)
        if run_id is not None:
            stmt = stmt.where(Event.run_id == run_id)
        stmt = stmt.order_by(Event.id.desc()).limit(limit)
        with self.db.session() as s:
            return [_record(r) for r in reversed(s.scalars(stmt).all())]

    def compact(self, run_id: str, keep: int | None = None) -> int:
        """Keep the newest `keep` events of a run, and every state change; return how many were dropped."""
        keep = keep or self.max_per_run
        self._read_own_writes()
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(Event).where(Event.run_id == run_id)) or 0
            if total <= keep:
                return 0
            boundary = s.scalar(select(Event.id).where(Event.run_id == run_id).order_by(Event.id.desc())
                                .offset(keep).limit(1))
            if boundary is None:
                return 0
            result = s.execute(delete(Event).where(Event.run_id == run_id, Event.id <= boundary,
                                                   ~Event.type.like("run.%"), ~Event.type.like("job.%")))
            return result.rowcount or 0
