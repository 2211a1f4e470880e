"""The supervisor: one per process, owner of every background thread.

Durable state lives in the database; this object holds only what is hot (the jobs it runs).
Jobs are claimed with a lease (owner + expiry) by compare-and-set, so a duplicate supervisor
(Streamlit rebuilding a cached resource, a second replica on one MySQL) never runs a job twice.
The heartbeat thread renews leases; a job whose owner stops renewing is taken over after the
lease expires, marked `interrupted`, and resumed from its checkpoint.

Threads:
  shoal-scheduler   promotes queued runs, takes over expired leases, claims pending jobs
  shoal-heartbeat   renews leases, writes heartbeats, delivers cancels, enforces cancel and
                    job timeouts, flags stalled jobs, compacts events
  shoal-job-N       a bounded pool running job handlers
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import psutil
from loguru import logger
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.infra.db import Database, explain
from core.infra.events import EventLog
from core.work.jobs import (
    ACTIVE_STATES,
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    HANDLERS,
    INTERRUPTED,
    PENDING,
    QUEUED,
    RUN_FINAL_STATES,
    RUN_OPEN_STATES,
    RUNNING,
    TERMINAL_STATES,
    HandlerInfo,
    JobCancelled,
    JobContext,
    JobSpec,
    LeaseLost,
)
from core.infra.models import Job, Run, Worker, from_epoch, utcnow
from core.infra.redact import redact
from core.infra.tracing import child_trace_id, new_trace_id, trace_scope


@dataclass
class SupervisorConfig:
    max_workers: int = 8
    max_concurrent_runs: int = 2
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    stall_seconds: float = 180.0
    cancel_timeout: float = 10.0
    shutdown_timeout: float = 15.0
    max_attempts: int = 3
    auto_resume: bool = True
    events_per_run: int = 5000
    poll_seconds: float = 0.25
    kinds: frozenset[str] | None = None  # job kinds this supervisor may claim; None = every registered kind

    @classmethod
    def from_settings(cls, settings) -> "SupervisorConfig":
        return cls(
            max_workers=settings["SHOAL_MAX_WORKERS"],
            max_concurrent_runs=settings["SHOAL_MAX_CONCURRENT_RUNS"],
            lease_seconds=settings["SHOAL_LEASE_SECONDS"],
            heartbeat_seconds=settings["SHOAL_HEARTBEAT_SECONDS"],
            stall_seconds=settings["SHOAL_STALL_SECONDS"],
            cancel_timeout=settings["SHOAL_CANCEL_TIMEOUT"],
            shutdown_timeout=settings["SHOAL_SHUTDOWN_TIMEOUT"],
            max_attempts=settings["SHOAL_MAX_ATTEMPTS"],
            auto_resume=settings["SHOAL_AUTO_RESUME"],
            events_per_run=settings["SHOAL_EVENTS_PER_RUN"],
        )


@dataclass
class _Active:
    ctx: JobContext
    handler: HandlerInfo
    started: float
    future: Future | None = None
    abandoned: bool = False  # force-cancelled or lease lost: whatever the thread returns is ignored
    stalled_flagged: bool = False


@dataclass
class LoopStatus:
    last_ok: float = 0.0
    last_error: str = ""
    errors: int = 0


@dataclass
class SupervisorStatus:
    worker_id: str
    running: bool
    stopping: bool
    active_jobs: int
    max_workers: int
    loops: dict[str, LoopStatus] = field(default_factory=dict)


class Supervisor:
    def __init__(self, db: Database, events: EventLog, config: SupervisorConfig | None = None,
                 worker_id: str | None = None, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.events = events
        self.config = config or SupervisorConfig()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.clock = clock
        self._active: dict[str, _Active] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stopping = False
        self._started = False
        self._threads: list[threading.Thread] = []
        self._executor: ThreadPoolExecutor | None = None
        self._loops = {"scheduler": LoopStatus(), "heartbeat": LoopStatus()}
        self._last_compact = 0.0
        self.on_shutdown: list[Callable[[], None]] = []  # writers to flush (telemetry, logs)
        self.settings = None  # the runtime's Settings, for job handlers that need configuration
        # (interval seconds, name, fn): light periodic work run by the heartbeat thread (alerts, …)
        self.periodic: list[tuple[float, str, Callable[[], None]]] = []
        self._periodic_due: dict[str, float] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> "Supervisor":
        """Register this worker, recover what dead processes left, start the threads."""
        if self._started:
            return self
        self._started = True
        self._executor = ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="shoal-job")
        now = self.clock()
        with self.db.session() as s:
            s.add(Worker(id=self.worker_id, host=socket.gethostname(), pid=os.getpid(), started_at=now,
                         heartbeat_at=now))
        self.recover_dead_local_workers()
        ready = threading.Barrier(3, timeout=timeout)
        for name, target in (("shoal-scheduler", self._scheduler_loop), ("shoal-heartbeat", self._heartbeat_loop)):
            t = threading.Thread(target=self._loop_wrapper, args=(target, ready), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        ready.wait()  # start has a timeout: BrokenBarrierError if the threads never come up
        self.events.emit("supervisor.started", source="supervisor", payload={"worker": self.worker_id})
        logger.info("supervisor {} started ({} workers)", self.worker_id, self.config.max_workers)
        return self

    def _loop_wrapper(self, target, ready: threading.Barrier) -> None:
        ready.wait()
        target()

    @property
    def running(self) -> bool:
        return self._started and not self._stop.is_set()

    def status(self) -> SupervisorStatus:
        with self._lock:
            active = len(self._active)
        return SupervisorStatus(self.worker_id, self.running, self._stopping, active, self.config.max_workers,
                                dict(self._loops))

    def shutdown(self, timeout: float | None = None) -> list[str]:
        """Stop claiming, ask running jobs to checkpoint and stop, wait, then mark the rest interrupted.

        Returns the ids of jobs that had to be interrupted. Never takes longer than `timeout`."""
        if not self._started or self._stop.is_set():
            return []
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._stopping = True
        with self._lock:
            active = list(self._active.values())
        for a in active:
            a.ctx.request_cancel("shutdown")
        for a in active:
            if a.future is not None:
                remaining = deadline - time.monotonic()
                try:
                    a.future.result(timeout=max(0.0, remaining))
                except Exception:  # noqa: BLE001 - outcomes are recorded by _execute
                    pass
        interrupted = []
        with self._lock:
            leftover = list(self._active.values())
        for a in leftover:
            a.abandoned = True
            if self._transition(a.ctx.job_id, (RUNNING, CANCELLING), INTERRUPTED, owner=self.worker_id,
                                event="job.interrupted", payload={"reason": "shutdown timeout"}, release=True):
                interrupted.append(a.ctx.job_id)
                self._maybe_finish_run(a.ctx.run_id)
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        if self._executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
        for flush in self.on_shutdown:
            try:
                flush()
            except Exception as exc:  # noqa: BLE001 - shutdown must finish
                logger.warning("flush at shutdown failed: {}", exc)
        try:
            with self.db.session() as s:
                s.execute(update(Worker).where(Worker.id == self.worker_id).values(stopped_at=self.clock()))
            self.events.emit("supervisor.stopped", source="supervisor",
                             payload={"worker": self.worker_id, "interrupted": interrupted})
        except SQLAlchemyError as exc:
            logger.warning("could not record supervisor stop: {}", explain(exc))
        logger.info("supervisor {} stopped; interrupted {}", self.worker_id, interrupted)
        return interrupted

    # ------------------------------------------------------------------ submitting work
    def submit_run(self, jobs: Iterable[JobSpec], *, kind: str = "analysis", topic: str = "",
                   params: dict | None = None, mode: str = "offline") -> str:
        """Create a queued run and its pending jobs; returns the run id. Never blocks on work."""
        if self._stopping:
            raise RuntimeError("the supervisor is shutting down and accepts no new work")
        jobs = list(jobs)
        if not jobs:
            raise ValueError("a run needs at least one job")
        names = [j.name or j.kind for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique within a run: {names}")
        for spec in jobs:
            if spec.kind not in HANDLERS:
                raise ValueError(f"no handler is registered for job kind '{spec.kind}'")
            for dep in spec.depends_on:
                if dep not in names:
                    raise ValueError(f"job '{spec.name or spec.kind}' depends on unknown job '{dep}'")
        run_id = secrets.token_hex(6)
        trace = new_trace_id()
        ids = {name: f"{run_id}-{name}"[:32] for name in names}
        now = self.clock()
        with self.db.session() as s:
            s.add(Run(id=run_id, kind=kind, topic=topic, status=QUEUED, mode=mode, params=params or {},
                      trace_id=trace, created_at=now))
            s.flush()
            for spec, name in zip(jobs, names):
                s.add(Job(id=ids[name], run_id=run_id, kind=spec.kind, name=name, status=PENDING,
                          depends_on=[ids[d] for d in spec.depends_on], params=spec.params,
                          max_attempts=spec.max_attempts or self.config.max_attempts,
                          trace_id=child_trace_id(trace), created_at=now, checkpoint={}))
            self.events.emit("run.queued", run_id=run_id, source="supervisor", trace_id=trace, session=s,
                             payload={"kind": kind, "topic": topic[:200], "jobs": names, "mode": mode})
        self._wake.set()
        return run_id

    def add_jobs(self, run_id: str, jobs: Iterable[JobSpec]) -> list[str]:
        """Add jobs to an existing run (e.g. re-run one engine). The run is reopened if it had finished."""
        jobs = list(jobs)
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id}")
            existing = {j.name: j.id for j in s.scalars(select(Job).where(Job.run_id == run_id))}
            ids = []
            now = self.clock()
            for spec in jobs:
                if spec.kind not in HANDLERS:
                    raise ValueError(f"no handler is registered for job kind '{spec.kind}'")
                base = spec.name or spec.kind
                name, n = base, 2
                while name in existing:
                    name, n = f"{base}#{n}", n + 1
                job_id = f"{run_id}-{name}"[:32]
                s.add(Job(id=job_id, run_id=run_id, kind=spec.kind, name=name, status=PENDING,
                          depends_on=[existing[d] for d in spec.depends_on if d in existing], params=spec.params,
                          max_attempts=spec.max_attempts or self.config.max_attempts,
                          trace_id=child_trace_id(run.trace_id), created_at=now, checkpoint={}))
                existing[name] = job_id
                ids.append(job_id)
            if run.status not in RUN_OPEN_STATES:
                run.status, run.finished_at = RUNNING, None
            self.events.emit("run.jobs_added", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                             payload={"jobs": ids})
        self._wake.set()
        return ids

    # ------------------------------------------------------------------ cancel / resume
    def cancel_job(self, job_id: str, timeout: float | None = None, reason: str = "user") -> str:
        """Cancel one job and wait (bounded) until it is cancelled; returns its final status."""
        timeout = self.config.cancel_timeout if timeout is None else timeout
        now = self.clock()
        with self.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise KeyError(f"no job {job_id}")
            status = job.status
        if status in (PENDING, INTERRUPTED):
            self._transition(job_id, (PENDING, INTERRUPTED), CANCELLED, event="job.cancelled",
                             payload={"reason": reason}, release=True, finished=True)
        elif status == RUNNING:
            self._transition(job_id, (RUNNING,), CANCELLING, event="job.cancelling", payload={"reason": reason},
                             extra={"cancel_requested": True, "cancel_requested_at": now})
            with self._lock:
                active = self._active.get(job_id)
            if active:
                active.ctx.request_cancel(reason)
        self._wait_terminal([job_id], timeout)
        if self._job_status(job_id)[0] == CANCELLING:
            # The handler did not stop in time: cancel it anyway, so nothing hangs in between.
            self._force_cancel(job_id)
        final, run_id = self._job_status(job_id)
        self._maybe_finish_run(run_id)
        return final

    def _job_status(self, job_id: str) -> tuple[str, str]:
        with self.db.session() as s:
            return tuple(s.execute(select(Job.status, Job.run_id).where(Job.id == job_id)).one())

    def cancel_run(self, run_id: str, timeout: float | None = None) -> str:
        timeout = self.config.cancel_timeout if timeout is None else timeout
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id}")
            if run.status in RUN_FINAL_STATES:
                return run.status
            prev = run.status
            run.status = CANCELLING
            self.events.emit("run.cancelling", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                             payload={"from": prev})
            job_ids = [j for j in s.scalars(select(Job.id).where(Job.run_id == run_id,
                                                                 Job.status.not_in(TERMINAL_STATES)))]
        deadline = time.monotonic() + timeout
        threads = [threading.Thread(target=self.cancel_job, args=(j, timeout), daemon=True) for j in job_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 1.0)
        self._maybe_finish_run(run_id, cancelling=True)
        with self.db.session() as s:
            return s.get(Run, run_id).status

    def resume_run(self, run_id: str, extra_attempts: int = 1) -> list[str]:
        """Put a run's interrupted, failed or cancelled jobs back to pending, keeping their checkpoints."""
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id}")
            if run.status in (QUEUED, RUNNING, CANCELLING):
                if not s.scalar(select(func.count()).select_from(Job).where(Job.run_id == run_id,
                                                                             Job.status == INTERRUPTED)):
                    return []
            jobs = s.scalars(select(Job).where(Job.run_id == run_id,
                                               Job.status.in_((INTERRUPTED, FAILED, CANCELLED)))).all()
            resumed = []
            for job in jobs:
                job.status = PENDING
                job.lease_owner = None
                job.lease_expires_at = None
                job.cancel_requested = False
                job.error = None
                job.finished_at = None
                job.max_attempts = max(job.max_attempts, job.attempt + extra_attempts)
                resumed.append(job.id)
                self.events.emit("job.resumed", run_id=run_id, job_id=job.id, source="supervisor",
                                 trace_id=job.trace_id, session=s,
                                 payload={"checkpoint_keys": sorted((job.checkpoint or {}).keys())})
            if resumed:
                run.status, run.finished_at, run.error = RUNNING, None, None
                self.events.emit("run.resumed", run_id=run_id, source="supervisor", trace_id=run.trace_id,
                                 session=s, payload={"jobs": resumed})
        self._wake.set()
        return resumed

    # ------------------------------------------------------------------ recovery
    def recover_dead_local_workers(self) -> list[str]:
        """Jobs owned by a supervisor process on this host that no longer exists are interrupted now,
        without waiting for their lease to expire (a restart after a crash)."""
        host = socket.gethostname()
        dead = []
        with self.db.session() as s:
            workers = s.scalars(select(Worker).where(Worker.host == host, Worker.stopped_at.is_(None),
                                                     Worker.id != self.worker_id)).all()
            for w in workers:
                if not _process_alive(w.pid, w.started_at):
                    dead.append(w.id)
                    w.stopped_at = self.clock()
        interrupted = []
        for wid in dead:
            interrupted += self._interrupt_owned_by(wid, reason=f"owner process {wid} is gone")
        return interrupted

    def _interrupt_owned_by(self, owner: str, reason: str, expired_only: bool = False) -> list[str]:
        now = self.clock()
        conds = [Job.lease_owner == owner, Job.status.in_(ACTIVE_STATES)]
        if expired_only:
            conds.append(Job.lease_expires_at < now)
        with self.db.session() as s:
            rows = s.execute(select(Job.id, Job.run_id).where(*conds)).all()
        out = []
        for job_id, run_id in rows:
            if self._transition(job_id, ACTIVE_STATES, INTERRUPTED, owner=owner, event="job.interrupted",
                                payload={"reason": reason, "previous_owner": owner}, release=True):
                out.append(job_id)
                self._maybe_finish_run(run_id)
        return out

    def _take_over_expired(self) -> None:
        now = self.clock()
        with self.db.session() as s:
            rows = s.execute(select(Job.id, Job.lease_owner, Job.status, Job.run_id)
                             .where(Job.status.in_(ACTIVE_STATES), Job.lease_expires_at < now)).all()
        for job_id, owner, status, run_id in rows:
            if owner == self.worker_id:
                continue  # our own heartbeat is late (e.g. a paused process); renewal will fix it
            target = CANCELLED if status == CANCELLING else INTERRUPTED
            if self._transition(job_id, (status,), target, owner=owner, expired_before=now,
                                event=f"job.{target}", release=True, finished=target == CANCELLED,
                                payload={"reason": "lease expired", "previous_owner": owner}):
                logger.warning("job {} of {} had an expired lease: {}", job_id, owner, target)
                self._maybe_finish_run(run_id)

    def _auto_resume(self) -> None:
        with self.db.session() as s:
            rows = s.execute(select(Job.id, Job.run_id, Job.attempt, Job.max_attempts)
                             .where(Job.status == INTERRUPTED)).all()
        for job_id, run_id, attempt, max_attempts in rows:
            if attempt >= max_attempts:
                self._transition(job_id, (INTERRUPTED,), FAILED, event="job.failed", finished=True,
                                 payload={"reason": f"gave up after {attempt} attempts"},
                                 extra={"error": f"interrupted {attempt} times; gave up"})
                self._maybe_finish_run(run_id)
            elif self.config.auto_resume:
                if self._transition(job_id, (INTERRUPTED,), PENDING, event="job.resumed",
                                    payload={"reason": "auto-resume", "attempt": attempt + 1}):
                    with self.db.session() as s:
                        s.execute(update(Run).where(Run.id == run_id, Run.status == INTERRUPTED)
                                  .values(status=RUNNING, finished_at=None))

    # ------------------------------------------------------------------ scheduler
    def _scheduler_loop(self) -> None:
        while not self._stop.is_set():
            self._guarded("scheduler", self.schedule_once)
            self._wake.wait(self.config.poll_seconds)
            self._wake.clear()

    def _guarded(self, loop: str, fn: Callable[[], None]) -> None:
        status = self._loops[loop]
        try:
            fn()
            status.last_ok = time.time()
        except Exception as exc:  # noqa: BLE001 - a loop must survive a database outage
            status.errors += 1
            status.last_error = redact(f"{exc.__class__.__name__}: {explain(exc)}")
            logger.warning("supervisor {} loop error: {}", loop, status.last_error)
            self._stop.wait(min(5.0, 0.5 * status.errors))

    def schedule_once(self) -> None:
        if self._stopping:
            return
        self._take_over_expired()
        self._auto_resume()
        self._promote_queued_runs()
        self._claim_pending()

    def _promote_queued_runs(self) -> None:
        with self.db.session() as s:
            running = s.scalar(select(func.count()).select_from(Run).where(Run.status.in_((RUNNING, CANCELLING))))
            free = self.config.max_concurrent_runs - (running or 0)
            if free <= 0:
                return
            queued = s.execute(select(Run.id, Run.trace_id).where(Run.status == QUEUED)
                               .order_by(Run.created_at).limit(free)).all()
        for run_id, trace in queued:
            with self.db.session() as s:
                res = s.execute(update(Run).where(Run.id == run_id, Run.status == QUEUED)
                                .values(status=RUNNING, started_at=self.clock()))
                if res.rowcount == 1:
                    self.events.emit("run.started", run_id=run_id, source="supervisor", trace_id=trace, session=s,
                                     payload={"worker": self.worker_id})

    def _claim_pending(self) -> None:
        with self._lock:
            free = self.config.max_workers - len(self._active)
        if free <= 0:
            return
        kinds = [k for k in HANDLERS if self.config.kinds is None or k in self.config.kinds]
        if not kinds:
            return
        with self.db.session() as s:
            candidates = s.execute(
                select(Job.id, Job.depends_on, Job.run_id)
                .join(Run, Run.id == Job.run_id)
                .where(Job.status == PENDING, Run.status == RUNNING, Job.kind.in_(kinds))
                .order_by(Job.created_at, Job.id).limit(free * 4)
            ).all()
            dep_ids = {d for _, deps, _ in candidates for d in (deps or [])}
            dep_status = dict(s.execute(select(Job.id, Job.status).where(Job.id.in_(dep_ids))).all()) if dep_ids else {}
        for job_id, deps, run_id in candidates:
            if free <= 0:
                break
            states = [dep_status.get(d, COMPLETED) for d in deps or []]
            if any(st in (FAILED, CANCELLED) for st in states):
                self._transition(job_id, (PENDING,), CANCELLED, event="job.cancelled", finished=True,
                                 payload={"reason": "an upstream job did not complete"},
                                 extra={"error": "skipped: an upstream job failed or was cancelled"})
                self._maybe_finish_run(run_id)
                continue
            if any(st != COMPLETED for st in states):
                continue
            if self._claim(job_id):
                free -= 1

    def _claim(self, job_id: str) -> bool:
        now = self.clock()
        expires = now + timedelta(seconds=self.config.lease_seconds)
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.status == PENDING).values(
                status=RUNNING, lease_owner=self.worker_id, lease_expires_at=expires, heartbeat_at=now,
                attempt=Job.attempt + 1, started_at=func.coalesce(Job.started_at, now), stalled=False,
                cancel_requested=False))
            if res.rowcount != 1:
                return False
            job = s.get(Job, job_id)
            run = s.get(Run, job.run_id)
            self.events.emit("job.started", run_id=job.run_id, job_id=job_id, source="supervisor",
                             trace_id=job.trace_id, session=s,
                             payload={"kind": job.kind, "attempt": job.attempt, "worker": self.worker_id,
                                      "resumed": bool(job.checkpoint)})
            ctx = JobContext(self, job.id, job.run_id, job.kind, job.name, dict(job.params or {}),
                             dict(job.checkpoint or {}), job.attempt, job.trace_id,
                             topic=run.topic if run else "", run_params=dict(run.params or {}) if run else {})
        handler = HANDLERS[ctx.kind]
        active = _Active(ctx=ctx, handler=handler, started=time.monotonic())
        with self._lock:
            self._active[job_id] = active
            stopping = self._stopping
        if stopping:
            # Claimed while shutdown was taking its snapshot of running jobs: it would never be asked
            # to stop, and a job that waits (the report) would keep the process from exiting.
            ctx.request_cancel("shutdown")
        try:
            active.future = self._executor.submit(self._execute, active)  # type: ignore[union-attr]
        except RuntimeError:  # executor shut down between claim and submit
            with self._lock:
                self._active.pop(job_id, None)
            self._transition(job_id, (RUNNING,), INTERRUPTED, owner=self.worker_id, event="job.interrupted",
                             payload={"reason": "shutdown"}, release=True)
            return False
        return True

    # ------------------------------------------------------------------ running a job
    def _execute(self, active: _Active) -> None:
        ctx = active.ctx
        outcome, error, result = COMPLETED, None, None
        with trace_scope(ctx.trace_id):
            try:
                value = active.handler.fn(ctx)
                result = value if isinstance(value, dict) else ({"value": value} if value is not None else None)
                if ctx.cancelled:
                    outcome = INTERRUPTED if ctx.cancel_reason == "shutdown" else CANCELLED
                    if ctx.cancel_reason == "timeout":
                        outcome, error = FAILED, "timed out"
            except LeaseLost:
                outcome = None
            except JobCancelled:
                if ctx.cancel_reason == "shutdown":
                    outcome = INTERRUPTED
                elif ctx.cancel_reason == "timeout":
                    outcome, error = FAILED, f"timed out after {active.handler.timeout:g} s"
                elif ctx.cancel_reason == "lease_lost":
                    outcome = None
                else:
                    outcome = CANCELLED
            except Exception as exc:  # noqa: BLE001 - a handler's failure is the job's failure
                outcome = FAILED
                error = redact(f"{exc.__class__.__name__}: {exc}")[:2000]
                ctx.log.opt(exception=exc).error("job {} ({}) failed: {}", ctx.job_id, ctx.kind, error)
                result = {"traceback": redact("".join(traceback.format_exception(exc)))[-4000:]}
        try:
            if outcome is not None and not active.abandoned:
                finished = outcome in TERMINAL_STATES
                extra: dict[str, Any] = {"checkpoint": ctx.checkpoint}
                if result is not None:
                    extra["result"] = result
                if error:
                    extra["error"] = error
                if ctx.progress is not None:
                    extra["progress"] = 1.0 if outcome == COMPLETED else ctx.progress
                elif outcome == COMPLETED:
                    extra["progress"] = 1.0
                payload = {"kind": ctx.kind, "attempt": ctx.attempt}
                if error:
                    payload["error"] = error
                ok = self._transition(ctx.job_id, ACTIVE_STATES, outcome, owner=self.worker_id,
                                      event=f"job.{outcome}", payload=payload, release=True, finished=finished,
                                      extra=extra)
                if not ok:
                    logger.warning("job {} finished as {} but this worker no longer owns it", ctx.job_id, outcome)
                self._maybe_finish_run(ctx.run_id)
        except Exception as exc:  # noqa: BLE001 - the lease will expire and another worker resumes it
            logger.error("could not record the end of job {}: {}", ctx.job_id, explain(exc))
        finally:
            with self._lock:
                self._active.pop(ctx.job_id, None)
            self._wake.set()

    def _save_checkpoint(self, ctx: JobContext) -> None:
        now = self.clock()
        with self.db.session() as s:
            values: dict[str, Any] = {"checkpoint": ctx.checkpoint, "heartbeat_at": now, "stalled": False}
            if ctx.progress is not None:
                values["progress"] = ctx.progress
            res = s.execute(update(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.worker_id,
                                              Job.status.in_(ACTIVE_STATES)).values(**values))
            if res.rowcount != 1:
                ctx.request_cancel("lease_lost")
                raise LeaseLost(ctx.job_id)

    # ------------------------------------------------------------------ heartbeat loop
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.config.heartbeat_seconds):
            self._guarded("heartbeat", self.heartbeat_once)

    def heartbeat_once(self) -> None:
        now = self.clock()
        expires = now + timedelta(seconds=self.config.lease_seconds)
        with self._lock:
            active = list(self._active.values())
        with self.db.session() as s:
            s.execute(update(Worker).where(Worker.id == self.worker_id).values(heartbeat_at=now))
        for a in active:
            if a.abandoned:
                continue
            ctx = a.ctx
            values: dict[str, Any] = {"lease_expires_at": expires,
                                      "heartbeat_at": from_epoch(ctx.last_heartbeat)}
            if ctx.progress is not None:
                values["progress"] = ctx.progress
            if ctx.message is not None:
                values["message"] = ctx.message
            with self.db.session() as s:
                res = s.execute(update(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.worker_id,
                                                  Job.status.in_(ACTIVE_STATES)).values(**values))
                row = s.execute(select(Job.status, Job.cancel_requested).where(Job.id == ctx.job_id)).first()
            if res.rowcount != 1:
                # Someone else owns it now (or it was force-cancelled): stop and write nothing more.
                a.abandoned = True
                ctx.request_cancel("lease_lost")
                continue
            if row and row.cancel_requested:
                ctx.request_cancel("user")  # a cancel asked for by another process or replica
            timeout = a.handler.timeout
            if timeout and time.monotonic() - a.started > timeout and not ctx.cancelled:
                ctx.request_cancel("timeout")
                self.events.emit("job.timeout", run_id=ctx.run_id, job_id=ctx.job_id, source="supervisor",
                                 trace_id=ctx.trace_id, payload={"timeout_s": timeout})
        self._enforce_cancel_timeouts(now)
        self._detect_stalls(now)
        if time.monotonic() - self._last_compact > 60:
            self._last_compact = time.monotonic()
            self._compact_events()
        self._run_periodic()

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for interval, name, fn in list(self.periodic):
            if now < self._periodic_due.get(name, 0.0):
                continue
            self._periodic_due[name] = now + interval
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a console task must never stop the heartbeat
                logger.warning("periodic task {} failed: {}", name, redact(str(exc)))

    def _enforce_cancel_timeouts(self, now: datetime) -> None:
        limit = now - timedelta(seconds=self.config.cancel_timeout)
        with self.db.session() as s:
            ids = list(s.scalars(select(Job.id).where(Job.status == CANCELLING, Job.cancel_requested_at < limit,
                                                      Job.lease_owner == self.worker_id)))
        for job_id in ids:
            self._force_cancel(job_id)

    def _force_cancel(self, job_id: str) -> None:
        with self._lock:
            active = self._active.get(job_id)
        if active:
            active.abandoned = True  # the thread may still be running; its result is ignored
        if self._transition(job_id, (CANCELLING,), CANCELLED, event="job.cancelled", release=True, finished=True,
                            payload={"reason": "cancel timeout: the job did not stop in time; abandoned"}):
            with self.db.session() as s:
                run_id = s.scalar(select(Job.run_id).where(Job.id == job_id))
            self._maybe_finish_run(run_id)

    def _detect_stalls(self, now: datetime) -> None:
        limit = now - timedelta(seconds=self.config.stall_seconds)
        with self.db.session() as s:
            newly = s.execute(select(Job.id, Job.run_id, Job.trace_id, Job.heartbeat_at, Job.lease_owner)
                              .where(Job.status == RUNNING, Job.stalled.is_(False), Job.heartbeat_at < limit)).all()
            recovered = s.execute(select(Job.id, Job.run_id, Job.trace_id)
                                  .where(Job.status == RUNNING, Job.stalled.is_(True), Job.heartbeat_at >= limit)).all()
        for job_id, run_id, trace, hb, owner in newly:
            with self.db.session() as s:
                res = s.execute(update(Job).where(Job.id == job_id, Job.stalled.is_(False)).values(stalled=True))
                if res.rowcount == 1:
                    silent = (now - hb).total_seconds() if hb else None
                    self.events.emit("job.stalled", run_id=run_id, job_id=job_id, source="supervisor", trace_id=trace,
                                     session=s, payload={"silent_s": silent, "owner": owner,
                                                         "threshold_s": self.config.stall_seconds})
                    logger.warning("job {} stalled: no heartbeat for {:.0f} s", job_id, silent or 0)
        for job_id, run_id, trace in recovered:
            with self.db.session() as s:
                res = s.execute(update(Job).where(Job.id == job_id, Job.stalled.is_(True)).values(stalled=False))
                if res.rowcount == 1:
                    self.events.emit("job.recovered", run_id=run_id, job_id=job_id, source="supervisor",
                                     trace_id=trace, session=s)

    def _compact_events(self) -> None:
        with self.db.session() as s:
            run_ids = list(s.scalars(select(Run.id).where(Run.status.in_(RUN_OPEN_STATES))))
        for run_id in run_ids:
            self.events.compact(run_id, self.config.events_per_run)

    # ------------------------------------------------------------------ helpers
    def _transition(self, job_id: str, from_states: Iterable[str], to_state: str, *, owner: str | None = None,
                    expired_before: datetime | None = None, event: str | None = None, payload: dict | None = None,
                    release: bool = False, finished: bool = False, extra: dict | None = None) -> bool:
        """Compare-and-set a job's status; the event commits with it. False if someone else moved it first."""
        conds = [Job.id == job_id, Job.status.in_(tuple(from_states))]
        if owner is not None:
            conds.append(Job.lease_owner == owner)
        if expired_before is not None:
            conds.append(Job.lease_expires_at < expired_before)
        values: dict[str, Any] = {"status": to_state, **(extra or {})}
        if release:
            values.update(lease_owner=None, lease_expires_at=None)
        if finished:
            values["finished_at"] = self.clock()
        with self.db.session() as s:
            res = s.execute(update(Job).where(*conds).values(**values))
            if res.rowcount != 1:
                return False
            if event:
                run_id, trace = s.execute(select(Job.run_id, Job.trace_id).where(Job.id == job_id)).one()
                self.events.emit(event, run_id=run_id, job_id=job_id, source="supervisor", trace_id=trace,
                                 session=s, payload={"from": list(from_states), "to": to_state, **(payload or {})})
        return True

    def _maybe_finish_run(self, run_id: str | None, cancelling: bool = False) -> str | None:
        """Set a run's final status once all its jobs have ended."""
        if not run_id:
            return None
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.status in RUN_FINAL_STATES:
                return run.status if run else None
            statuses = list(s.scalars(select(Job.status).where(Job.run_id == run_id)))
            if any(st in (PENDING, RUNNING, CANCELLING) for st in statuses):
                return None
            if INTERRUPTED in statuses:
                final = INTERRUPTED
            elif all(st == COMPLETED for st in statuses):
                final = COMPLETED
            elif run.status == CANCELLING or cancelling:
                final = CANCELLED
            elif FAILED in statuses:
                final = FAILED
            else:
                final = CANCELLED
            if run.status == final:
                return final
            res = s.execute(update(Run).where(Run.id == run_id, Run.status == run.status).values(
                status=final, finished_at=self.clock() if final != INTERRUPTED else None,
                error=None if final == COMPLETED else f"jobs: {', '.join(sorted(set(statuses)))}"))
            if res.rowcount == 1:
                self.events.emit(f"run.{final}", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                                 payload={"jobs": {st: statuses.count(st) for st in set(statuses)}})
        if final in (COMPLETED, FAILED, CANCELLED):
            try:
                self.events.compact(run_id, self.config.events_per_run)
            except SQLAlchemyError as exc:
                logger.warning("event compaction for run {} failed: {}", run_id, explain(exc))
        self._wake.set()
        return final

    def end_run(self, run_id: str, status: str, error: str, payload: dict | None = None) -> bool:
        """End an open run with a final status a job decided (e.g. insufficient_data), then cancel its
        pending jobs; running ones are left to finish. Returns False when the run was not open."""
        if status not in RUN_FINAL_STATES:
            raise ValueError(f"not a final run status: {status}")
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.status not in RUN_OPEN_STATES:
                return False
            res = s.execute(update(Run).where(Run.id == run_id, Run.status == run.status).values(
                status=status, finished_at=self.clock(), error=error[:2000]))
            if res.rowcount != 1:
                return False
            self.events.emit(f"run.{status}", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                             payload=payload or {})
            pending = list(s.scalars(select(Job.id).where(Job.run_id == run_id, Job.status == PENDING)))
        for job_id in pending:
            self._transition(job_id, (PENDING,), CANCELLED, event="job.cancelled", finished=True,
                             payload={"reason": status}, extra={"error": f"skipped: run ended {status}"})
        self._wake.set()
        return True

    def _wait_terminal(self, job_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self.db.session() as s:
                statuses = list(s.scalars(select(Job.status).where(Job.id.in_(job_ids))))
            if all(st in TERMINAL_STATES or st == INTERRUPTED for st in statuses):
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def wait_run(self, run_id: str, timeout: float) -> str:
        """Block until a run ends (for the command line and tests; pages never call this)."""
        # With auto-resume on, `interrupted` is a passing state: the run comes back by itself.
        final = RUN_FINAL_STATES + (() if self.config.auto_resume and self.running else (INTERRUPTED,))
        deadline = time.monotonic() + timeout
        while True:
            with self.db.session() as s:
                status = s.scalar(select(Run.status).where(Run.id == run_id))
            if status in final or status is None or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)


def _process_alive(pid: int, started_at: datetime | None) -> bool:
    """Alive and the same process (pids are reused: compare creation time with registration)."""
    try:
        proc = psutil.Process(pid)
        created = from_epoch(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    if proc.status() == psutil.STATUS_ZOMBIE:
        return False
    return started_at is None or created <= started_at + timedelta(seconds=5)
