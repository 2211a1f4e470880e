"""Periodic console work on its own thread ("shoal-monitor"), never on the supervisor's lease thread.

After Dagster's run monitoring: one small function per concern (health checks, alert evaluation,
resource sampling, stall detection, event compaction), each run on its own interval, each with
its own error capture — and inside a task, each item (an endpoint, an alert rule, a job, a run)
with its own error capture too (`each`), so one failure never aborts a pass and a slow health
check delays only the tasks of this thread, never a lease renewal.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, TypeVar

from loguru import logger
from sqlalchemy import select, update

from core.infra.models import Job, Run, utcnow
from core.infra.redact import redact
from core.work.states import JobState, RunState

T = TypeVar("T")


def _text(exc: BaseException) -> str:
    return redact(f"{exc.__class__.__name__}: {exc}")[:300]


def each(items: Iterable[T], fn: Callable[[T], Any], what: str = "item") -> list[tuple[T, str]]:
    """fn(item) for every item; an item that raises is logged and skipped, the others still run.
    Returns the failures as (item, error text)."""
    failures = []
    for item in items:
        try:
            fn(item)
        except Exception as exc:  # noqa: BLE001 - one item never stops the others
            failures.append((item, _text(exc)))
            logger.warning("{} {!r} failed: {}", what, item, failures[-1][1])
    return failures


@dataclass
class TaskStatus:
    runs: int = 0
    errors: int = 0
    last_ok: float = 0.0      # epoch seconds
    last_error: str = ""


@dataclass
class _Task:
    name: str
    interval: float
    fn: Callable[[], Any]
    due: float = 0.0


class Monitor:
    """Runs registered tasks on their intervals on one daemon thread."""

    def __init__(self, tick: float = 0.25, clock: Callable[[], float] = time.monotonic):
        self.tick = max(0.01, float(tick))
        self.clock = clock
        self._tasks: dict[str, _Task] = {}
        self._status: dict[str, TaskStatus] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, interval: float, fn: Callable[[], Any], *,
            first_after: float | None = None) -> "Monitor":
        """Run `fn` every `interval` seconds, the first time `first_after` seconds from now (default:
        one interval, as a heartbeat-driven task did)."""
        interval = max(0.01, float(interval))
        due = self.clock() + (interval if first_after is None else max(0.0, float(first_after)))
        with self._lock:
            self._tasks[name] = _Task(name, interval, fn, due)
            self._status.setdefault(name, TaskStatus())
        return self

    def run_task(self, name: str) -> bool:
        """Run one task now; True when it finished without raising."""
        with self._lock:
            task = self._tasks[name]
            status = self._status[name]
        status.runs += 1
        try:
            task.fn()
        except Exception as exc:  # noqa: BLE001 - a console task never stops the monitor
            status.errors += 1
            status.last_error = _text(exc)
            logger.warning("monitor task {} failed: {}", name, status.last_error)
            return False
        status.last_ok = time.time()
        return True

    def run_due(self) -> list[str]:
        """Run every task whose interval has passed; returns their names."""
        now = self.clock()
        with self._lock:
            due = [t for t in self._tasks.values() if now >= t.due]
            for t in due:
                t.due = now + t.interval
        for t in due:
            if self._stop.is_set():
                break
            self.run_task(t.name)
        return [t.name for t in due]

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(self.tick)

    def start(self) -> "Monitor":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="shoal-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def status(self) -> dict[str, TaskStatus]:
        with self._lock:
            return {k: TaskStatus(**vars(v)) for k, v in self._status.items()}


# ---------------------------------------------------------------------------------------------
# Job and run upkeep: small functions, one concern each, one item at a time

def detect_stalls(db, events, stall_seconds: float, now: datetime | None = None) -> list[tuple[str, str]]:
    """Flag running jobs silent for longer than `stall_seconds` (job.stalled), and unflag those that
    spoke again (job.recovered). Each job on its own: one that fails does not stop the rest."""
    now = now or utcnow()
    limit = now - timedelta(seconds=stall_seconds)
    with db.session() as s:
        newly = s.execute(select(Job.id, Job.run_id, Job.trace_id, Job.heartbeat_at, Job.lease_owner)
                          .where(Job.status == JobState.RUNNING, Job.stalled.is_(False),
                                 Job.heartbeat_at < limit)).all()
        recovered = s.execute(select(Job.id, Job.run_id, Job.trace_id)
                              .where(Job.status == JobState.RUNNING, Job.stalled.is_(True),
                                     Job.heartbeat_at >= limit)).all()

    def flag(row) -> None:
        job_id, run_id, trace, hb, owner = row
        with db.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.stalled.is_(False)).values(stalled=True))
            if res.rowcount == 1:
                silent = (now - hb).total_seconds() if hb else None
                events.emit("job.stalled", run_id=run_id, job_id=job_id, source="supervisor", trace_id=trace,
                            session=s, payload={"silent_s": silent, "owner": owner, "threshold_s": stall_seconds})
                logger.warning("job {} stalled: no heartbeat for {:.0f} s", job_id, silent or 0)

    def unflag(row) -> None:
        job_id, run_id, trace = row
        with db.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.stalled.is_(True)).values(stalled=False))
            if res.rowcount == 1:
                events.emit("job.recovered", run_id=run_id, job_id=job_id, source="supervisor", trace_id=trace,
                            session=s)

    return [(r[0], e) for r, e in each(newly, flag, "stall flag")] + \
        [(r[0], e) for r, e in each(recovered, unflag, "stall recovery")]


def compact_open_runs(db, events, per_run: int) -> list[tuple[str, str]]:
    """Keep each open run's event log within `per_run` events (finished runs are compacted as they end)."""
    from core.infra import retry

    with db.session() as s:
        run_ids = list(s.scalars(select(Run.id).where(Run.status.in_(RunState.OPEN))))
    return each(run_ids, lambda run_id: retry.call_with_retry(retry.DATABASE, events.compact, run_id, per_run,
                                                              op="compact events"), "event compaction of run")
