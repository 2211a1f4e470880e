"""Telemetry events (Bisheng style: event id, type, time, run, trace id, session, payload),
written to the telemetry_events table by a background batch writer.

`TelemetryWriter.record()` is safe on any hot path: it appends a tuple to a bounded in-memory
buffer under a lock held for a few instructions, never touches the database, never blocks
on I/O and never raises (an internal failure is counted as a drop). A daemon thread
("shoal-telemetry") takes up to `batch_size` events from the front of the buffer, writes
them in one INSERT, and only then removes them from the buffer, so nothing is lost while the
database is up.

When the database is unreachable, the writer keeps the events and retries with backoff (at
most 2 s apart; `flush()` retries at once). Once `max_buffer` events wait, new events are
DROPPED (the newest are dropped, the oldest kept): the buffered events are the start of the
outage, written in order when the database comes back, and since only the writer removes
from the front, the accounting is exact: `stats().dropped` counts every event that was
recorded and will never be written (overflow, plus rows the database rejected one by one,
plus records after close); written + dropped + buffered == recorded, always.

Payloads are made JSON-safe (NaN and unknown objects become their repr) and redacted on the writer
thread, not in record(); over-long ids are truncated to the column sizes.
"""
from __future__ import annotations

import itertools
import math
import numbers
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable

from loguru import logger
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.infra.db import Database, DatabaseUnavailable, explain
from core.infra.models import TelemetryEvent, from_epoch
from core.infra.redact import MASK, is_secret_key, redact
from core.infra.tracing import current_trace_id

if TYPE_CHECKING:  # pandas is imported inside the functions that build frames: a page (or the runtime)
    import pandas as pd  # that builds none does not load it

MAX_BACKOFF = 2.0
_now = time.time
_TRANSIENT = (DatabaseUnavailable, OSError, TimeoutError)


@dataclass(frozen=True)
class TelemetryStats:
    recorded: int
    written: int
    dropped: int
    buffered: int
    dropped_overflow: int
    dropped_rejected: int
    dropped_closed: int
    batches: int
    failures: int
    last_error: str
    last_write: float | None  # epoch seconds of the last successful batch
    max_buffer: int

    def as_dict(self) -> dict:
        return asdict(self)


_MAX_DEPTH = 20


def _clean(obj: Any, depth: int = 0) -> Any:
    """A JSON-safe, redacted copy in one pass (core.infra.redact.redact_obj's rules, key test cached):
    NaN/infinity and unknown objects become their repr, keys become strings, deep or cyclic
    structures are cut at _MAX_DEPTH."""
    t = type(obj)
    if t is int or t is bool or obj is None:
        return obj
    if t is str:
        return redact(obj)
    if t is float:
        return obj if math.isfinite(obj) else repr(obj)
    if depth >= _MAX_DEPTH:
        return redact(repr(obj)[:200])
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            k = k if type(k) is str else str(k)
            out[k] = MASK if v and is_secret_key(k) else _clean(v, depth + 1)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_clean(v, depth + 1) for v in obj]
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return _clean(float(obj), depth)
    if isinstance(obj, str):
        return redact(str(obj))
    return redact(repr(obj)[:2000])


def _is_transient(exc: BaseException) -> bool:
    """A database that is down or busy, as opposed to a row it refuses."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    return isinstance(exc, _TRANSIENT + (OperationalError, InterfaceError, DisconnectionError, PoolTimeout))


def _error_text(exc: BaseException) -> str:
    return explain(exc) if isinstance(exc, SQLAlchemyError) else redact(f"{type(exc).__name__}: {exc}")[:300]


class TelemetryWriter:
    def __init__(self, db: Database, *, batch_size: int = 500, flush_interval: float = 0.5,
                 max_buffer: int = 50_000, start: bool = True):
        self.db = db
        self.batch_size = max(1, int(batch_size))
        self.flush_interval = max(0.01, float(flush_interval))
        self.max_buffer = max(1, int(max_buffer))
        self._buf: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition()  # notified after every batch attempt
        self._wake = threading.Event()
        self._closing = False
        self._closed = False
        self._prefix = secrets.token_hex(10)  # 20 hex chars + 12 of a counter = 32, the column size
        self._seq = itertools.count(1)
        self._recorded = self._written = 0
        self._dropped_overflow = self._dropped_rejected = self._dropped_closed = 0
        self._batches = self._failures = 0
        self._last_error = ""
        self._last_write: float | None = None
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ the hot path
    def record(self, type: str, *, run_id: str | None = None, trace_id: str | None = None,
               session_id: str | None = None, payload: dict | None = None) -> bool:
        """Queue one event: True when queued, False when dropped (counted). Never blocks, never raises.

        `trace_id` defaults to the current trace (core.infra.tracing); ts is taken now."""
        try:
            item = (next(self._seq), type, _now(), run_id,
                    trace_id if trace_id is not None else current_trace_id(), session_id, payload)
            with self._lock:
                self._recorded += 1
                n = len(self._buf)
                if n >= self.max_buffer or self._closed:
                    if self._closed:
                        self._dropped_closed += 1
                    else:
                        self._dropped_overflow += 1
                    return False
                self._buf.append(item)
            if n + 1 >= self.batch_size and not self._wake.is_set():
                self._wake.set()
            return True
        except Exception as exc:  # noqa: BLE001 - observing never breaks the observed
            try:
                with self._lock:
                    self._dropped_rejected += 1
                    self._last_error = f"record failed: {exc.__class__.__name__}"
            except Exception:  # noqa: BLE001
                pass
            return False

    # ------------------------------------------------------------------ control
    def start(self) -> "TelemetryWriter":
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shoal-telemetry", daemon=True)
            self._thread.start()
        return self

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is written (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            target = self._written_or_dropped_target()
        while True:
            with self._lock:
                done = self._written + self._dropped_rejected >= target or not self._buf
            if done:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                return False
            self._wake.set()
            with self._cond:
                self._cond.wait(timeout=min(remaining, 0.05))

    def _written_or_dropped_target(self) -> int:
        # Events buffered now are written once written + rejected reaches this mark (FIFO).
        return self._written + self._dropped_rejected + len(self._buf)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is buffered (bounded by `timeout`), stop the thread. What could not be written
        in time and later records are dropped and counted (dropped_closed). Returns True when
        everything was written."""
        ok = self.flush(timeout)
        with self._lock:
            self._closed = True
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.1, min(timeout, 2.0)))
        if not self.alive:
            with self._lock:  # what is still buffered will never be written: it is dropped, and counted
                self._dropped_closed += len(self._buf)
                self._buf.clear()
        return ok

    def stats(self) -> TelemetryStats:
        with self._lock:
            dropped = self._dropped_overflow + self._dropped_rejected + self._dropped_closed
            return TelemetryStats(self._recorded, self._written, dropped, len(self._buf), self._dropped_overflow,
                                  self._dropped_rejected, self._dropped_closed, self._batches, self._failures,
                                  self._last_error, self._last_write, self.max_buffer)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(timeout=backoff or self.flush_interval)
            self._wake.clear()
            if self._closing:
                return
            try:
                ok = self._drain()
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive anything
                ok = False
                with self._lock:
                    self._last_error = _error_text(exc)
            backoff = 0.0 if ok else min(MAX_BACKOFF, max(self.flush_interval, backoff * 2 or 0.1))
            with self._cond:
                self._cond.notify_all()

    def _drain(self) -> bool:
        """Write batches until the buffer is empty; False when the database failed."""
        while not self._closing:
            with self._lock:
                batch = list(itertools.islice(self._buf, 0, self.batch_size))
            if not batch:
                return True
            written, rejected, error = self._write(batch)
            with self._lock:
                for _ in range(written + rejected):
                    self._buf.popleft()  # only this thread removes from the front: these are `batch`
                self._written += written
                self._dropped_rejected += rejected
                if written or rejected:
                    self._batches += 1
                    self._last_write = time.time()
                if error:
                    self._failures += 1
                    self._last_error = error
            with self._cond:
                self._cond.notify_all()
            if error and written + rejected < len(batch):
                return False
        return True

    def _row(self, item: tuple) -> dict:
        seq, type_, ts, run_id, trace_id, session_id, payload = item
        return {"event_id": f"{self._prefix}{seq:012x}", "type": str(type_)[:64], "ts": from_epoch(ts),
                "run_id": None if run_id is None else str(run_id)[:32], "trace_id": str(trace_id or "")[:64],
                "session_id": None if session_id is None else str(session_id)[:64],
                "payload": _clean(payload if isinstance(payload, dict) else ({} if payload is None else {"value": payload}))}

    def _write(self, batch: list[tuple]) -> tuple[int, int, str]:
        """(written, rejected, error) for a prefix of `batch`: all or nothing, unless the database
        refuses particular rows, which are then written one by one and the bad ones rejected."""
        try:
            rows = [self._row(item) for item in batch]
        except Exception as exc:  # noqa: BLE001 - cannot happen for tuples from record(); be safe anyway
            return 0, len(batch), f"unserialisable batch: {type(exc).__name__}"
        try:
            engine = self.db.require()
            with engine.begin() as conn:
                conn.execute(insert(TelemetryEvent), rows)
            return len(rows), 0, ""
        except Exception as exc:  # noqa: BLE001
            if _is_transient(exc):
                return 0, 0, _error_text(exc)
            first_error = _error_text(exc)
        # A row the database refuses (or a batch already committed once: duplicate event ids).
        return self._write_one_by_one(rows, first_error)

    def _write_one_by_one(self, rows: list[dict], first_error: str) -> tuple[int, int, str]:
        written = rejected = 0
        engine = self.db.engine
        for row in rows:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(TelemetryEvent), [row])
                written += 1
            except IntegrityError:
                try:
                    with engine.connect() as conn:
                        exists = conn.execute(select(TelemetryEvent.id).where(
                            TelemetryEvent.event_id == row["event_id"])).first() is not None
                except Exception as exc:  # noqa: BLE001
                    return written, rejected, _error_text(exc)
                if exists:
                    written += 1  # committed by an earlier attempt whose answer was lost
                else:
                    rejected += 1
            except Exception as exc:  # noqa: BLE001
                if _is_transient(exc):
                    return written, rejected, _error_text(exc)
                rejected += 1
                logger.warning("telemetry event {} rejected by the database: {}", row["type"], _error_text(exc))
        return written, rejected, first_error if rejected else ""


TELEMETRY_COLUMNS = ["id", "event_id", "type", "ts", "run_id", "trace_id", "session_id", "payload"]


def query_telemetry(db: Database, *, types: str | Iterable[str] | None = None, run_id: str | None = None,
                    trace_id: str | None = None, session_id: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 500) -> pd.DataFrame:
    """Telemetry events newest first. `trace_id` matches as a prefix (a run's trace shows its
    children); since/until are naive UTC. A database problem gives an empty frame with
    `attrs["error"]`."""
    import pandas as pd
    from core.console.usage import like_prefix  # local: usage imports nothing from here, but keep the graph simple

    stmt = select(*(getattr(TelemetryEvent, c) for c in TELEMETRY_COLUMNS)).order_by(TelemetryEvent.id.desc())
    if types:
        stmt = stmt.where(TelemetryEvent.type.in_([types] if isinstance(types, str) else list(types)))
    if run_id:
        stmt = stmt.where(TelemetryEvent.run_id == run_id)
    if trace_id:
        stmt = stmt.where(TelemetryEvent.trace_id.like(like_prefix(trace_id), escape="\\"))
    if session_id:
        stmt = stmt.where(TelemetryEvent.session_id == session_id)
    if since is not None:
        stmt = stmt.where(TelemetryEvent.ts >= since)
    if until is not None:
        stmt = stmt.where(TelemetryEvent.ts < until)
    stmt = stmt.limit(max(0, int(limit)))
    try:
        with db.session() as s:
            rows = s.execute(stmt).all()
    except Exception as exc:  # noqa: BLE001 - the explorer shows what it can
        frame = pd.DataFrame(columns=TELEMETRY_COLUMNS)
        frame.attrs["error"] = f"telemetry cannot be read: {_error_text(exc)}"
        return frame
    return pd.DataFrame(rows, columns=TELEMETRY_COLUMNS)


def telemetry_types(db: Database, limit: int = 200) -> list[str]:
    """The distinct event types (for the explorer's filter). Empty on any problem."""
    try:
        with db.session() as s:
            return sorted(s.scalars(select(TelemetryEvent.type).distinct().limit(limit)).all())
    except Exception:  # noqa: BLE001
        return []


# -- the process's writer ------------------------------------------------------------------------
# Code that observes (engines, searches, pages) calls `record(...)`; with no writer configured
# (a test, a command that does not need telemetry) it does nothing.
_default_lock = threading.Lock()
_default: TelemetryWriter | None = None


def set_default_writer(writer: TelemetryWriter | None, *, only_if: TelemetryWriter | None = None) -> None:
    """Install (or remove) the process's writer; `only_if` removes it only if it is still that one."""
    global _default
    with _default_lock:
        if only_if is None or _default is only_if:
            _default = writer


def default_writer() -> TelemetryWriter | None:
    return _default


def record(type: str, **fields: Any) -> bool:
    """Record one telemetry event on the process's writer; never blocks, never raises."""
    writer = _default
    if writer is None:
        return False
    try:
        return writer.record(type, **fields)
    except Exception:  # noqa: BLE001 - telemetry must never break what it observes
        return False
