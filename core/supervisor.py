"""The supervisor: one per process, it claims jobs, holds their leases and runs them.

Durable state lives in the database (core.work.ledger writes it); this object holds only what is
hot (the jobs it runs). Jobs are claimed with a lease (owner + expiry) by compare-and-set, so a
duplicate supervisor (Streamlit rebuilding a cached resource, a second replica on one MySQL)
never runs a job twice. The heartbeat thread renews leases; a job whose owner stops renewing is
taken over after the lease expires, marked `interrupted`, and resumed from its checkpoint.

Threads:
  shoal-scheduler   promotes queued runs, takes over expired leases, claims pending jobs
  shoal-heartbeat   renews leases, writes heartbeats, delivers cancels, enforces cancel and job timeouts
  shoal-job-N       a bounded pool running job handlers
Periodic console work (health checks, alerts, resource samples, stall detection, event
compaction) runs on its own thread, core.console.monitoring, never on these.

Claims, lease renewals and checkpoint writes are retried under core.infra.retry.DATABASE.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from loguru import logger
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.infra import retry
from core.infra.config import Settings, load_settings
from core.infra.db import Database, explain
from core.infra.events import EventLog
from core.infra.models import Job, Run, Worker, from_epoch, utcnow
from core.infra.redact import redact
from core.infra.tracing import trace_scope
from core.work import ownership, run_settings
from core.work.config import SupervisorConfig
from core.work.jobs import (HandlerRegistry, JobCancelled, JobContext, JobServices, JobSpec,
                            LeaseLost)
from core.work.active import ActiveJob
from core.work.ledger import READY, SKIP, Ledger
from core.work.states import JobState, RunState

PENDING, RUNNING, CANCELLING = JobState.PENDING, JobState.RUNNING, JobState.CANCELLING
COMPLETED, FAILED, CANCELLED = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED
INTERRUPTED = JobState.INTERRUPTED
ACTIVE_STATES, TERMINAL_STATES = JobState.ACTIVE, JobState.FINAL


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
    """Claims, leases, heartbeats, cancel and shutdown. It implements the CheckpointWriter and
    RunControl protocols that JobContext hands to handlers."""

    def __init__(self, db: Database, events: EventLog, config: SupervisorConfig | None = None,
                 worker_id: str | None = None, clock: Callable[[], datetime] = utcnow, *,
                 handlers: HandlerRegistry | None = None, settings=None, forum: Any = None, limits: Any = None):
        self.db = db
        self.events = events
        self.config = config or SupervisorConfig()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.clock = clock
        self.handlers = handlers if handlers is not None else HandlerRegistry()
        # Services handed to every job. Without settings, each job reads the settings in force when
        # it is claimed; without limits, the LLM client uses the process-wide limiter.
        self.settings, self.forum, self.limits = settings, forum, limits
        self.ledger = Ledger(db, events, self.handlers, max_attempts=self.config.max_attempts,
                             events_per_run=self.config.events_per_run, clock=clock)
        self._active: dict[str, ActiveJob] = {}
        self._lock = threading.RLock()
        # Held for a whole scheduling pass: shutdown waits for a pass in flight before handing jobs
        # back, so that pass cannot resume (interrupted -> pending) what shutdown just handed back.
        self._pass_lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stopping = False
        self._started = False
        self._threads: list[threading.Thread] = []
        self._executor: ThreadPoolExecutor | None = None
        self._loops = {"scheduler": LoopStatus(), "heartbeat": LoopStatus()}
        self.own_runs: set[str] = set()  # runs submitted or taken over here (config.own_runs_only)
        self.own_jobs: dict[str, str] = {}  # job → run: jobs added here to a run that is not its own (`report`)
        self._run_settings = run_settings.RunSettingsCache()
        self.on_shutdown: list[Callable[[], None]] = []  # writers to flush (telemetry, logs)
        self.heartbeats = 0  # completed heartbeat passes (the console and tests read it)

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
        with self._pass_lock:  # a scheduling pass in flight ends first (it sees _stopping next time)
            pass
        own = self._own()
        if own:  # this process's runs and jobs: what nobody has claimed goes back too, so they end resumable
            try:
                ownership.hand_back_pending(self.ledger, *own, f"owner {self.worker_id} stopped", self._finish_run)
            except SQLAlchemyError as exc:
                logger.warning("could not hand back pending jobs: {}", explain(exc))
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
            a.abandon()
            if self.ledger.transition(a.ctx.job_id, ACTIVE_STATES, INTERRUPTED, owner=self.worker_id,
                                      event="job.interrupted", payload={"reason": "shutdown timeout"}, release=True):
                interrupted.append(a.ctx.job_id)
                self._finish_run(a.ctx.run_id)
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

    # ------------------------------------------------------------------ submitting work (the ledger writes it)
    def submit_run(self, jobs: Iterable[JobSpec], *, kind: str = "analysis", topic: str = "",
                   params: dict | None = None, mode: str = "offline", settings: Settings | None = None) -> str:
        """Create a queued run and its pending jobs; returns the run id. Never blocks on work.
        The run records `settings` (default: this supervisor's) for its jobs; this process adopts it."""
        if self._stopping:
            raise RuntimeError("the supervisor is shutting down and accepts no new work")
        recorded = run_settings.record(settings or self.settings or load_settings())
        run_id = self.ledger.submit_run(jobs, kind=kind, topic=topic, params=params, mode=mode, settings=recorded,
                                        owner=self.worker_id)
        self.adopt(run_id)
        return run_id

    def add_jobs(self, run_id: str, jobs: Iterable[JobSpec]) -> list[str]:
        """Add jobs to an existing run (e.g. re-run one engine). The run is reopened if it had finished."""
        ids = self.ledger.add_jobs(run_id, jobs)
        with self._lock:
            if run_id not in self.own_runs:  # only these jobs are ours, not the rest of the run
                self.own_jobs.update(dict.fromkeys(ids, run_id))
        self._wake.set()
        if self.running and not self._stopping:  # those ready (a round's host) are claimed now, not at the next pass
            self._guarded("scheduler", lambda: self._claim_pending(run_id))
        return ids

    def end_run(self, run_id: str, status: str, error: str, payload: dict | None = None) -> bool:
        """End an open run with a final status a job decided (e.g. insufficient_data); see Ledger.end_run."""
        ended = self.ledger.end_run(run_id, status, error, payload)
        self._wake.set()
        return ended

    def resume_run(self, run_id: str, extra_attempts: int = 1) -> list[str]:
        """Put a run's interrupted, failed or cancelled jobs back to pending, keeping their checkpoints."""
        resumed = self.ledger.resume_run(run_id, extra_attempts)
        self.adopt(run_id)
        return resumed

    def _finish_run(self, run_id: str | None, cancelling: bool = False) -> str | None:
        final = self.ledger.maybe_finish_run(run_id, cancelling=cancelling)
        self._wake.set()
        return final

    # ------------------------------------------------------------------ cancel
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
            self.ledger.transition(job_id, (PENDING, INTERRUPTED), CANCELLED, event="job.cancelled",
                                   payload={"reason": reason}, release=True, finished=True)
        elif status == RUNNING:
            self.ledger.transition(job_id, (RUNNING,), CANCELLING, event="job.cancelling", payload={"reason": reason},
                                   extra={"cancel_requested": True, "cancel_requested_at": now})
            with self._lock:
                active = self._active.get(job_id)
            if active:
                active.ctx.request_cancel(reason)
        self.ledger.wait_jobs_ended([job_id], timeout)
        if self.ledger.job_status(job_id)[0] == CANCELLING:
            # The handler did not stop in time: cancel it anyway, so nothing hangs in between.
            self._force_cancel(job_id)
        final, run_id = self.ledger.job_status(job_id)
        self._finish_run(run_id)
        return final

    def cancel_run(self, run_id: str, timeout: float | None = None) -> str:
        timeout = self.config.cancel_timeout if timeout is None else timeout
        final, job_ids = self.ledger.mark_cancelling(run_id)
        if final is not None:
            return final
        deadline = time.monotonic() + timeout
        threads = [threading.Thread(target=self.cancel_job, args=(j, timeout), daemon=True) for j in job_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 1.0)
        # What is still open now (a cancel thread slowed by a loaded machine, a job added meanwhile) is
        # cancelled here without more waiting, so the run does not stay `cancelling`.
        with self.db.session() as s:
            still_open = list(s.scalars(select(Job.id).where(Job.run_id == run_id, Job.status.not_in(TERMINAL_STATES))))
        for job_id in still_open:
            self.cancel_job(job_id, timeout=0)
        self._finish_run(run_id, cancelling=True)
        with self.db.session() as s:
            return s.get(Run, run_id).status

    # ------------------------------------------------------------------ recovery and ownership
    def recover_dead_local_workers(self) -> list[str]:
        """Jobs owned by a supervisor process on this host that no longer exists are interrupted now,
        without waiting for their lease to expire (a restart after a crash)."""
        return ownership.recover_dead_local_workers(self.ledger, self.worker_id, self.clock(), self._finish_run)

    def adopt(self, run_id: str) -> None:
        """This process will run the run's jobs (an own-runs-only supervisor claims no others)."""
        with self._lock:
            self.own_runs.add(run_id)
        self._wake.set()

    def take_over(self, run_id: str) -> ownership.TakeOver:
        """`resume`: the run's jobs held by dead processes are handed back, its interrupted, failed and
        cancelled jobs go back to pending, and this supervisor adopts the run. Nothing is taken while a
        live process holds some of its jobs: `held_by` names it."""
        result = ownership.take_over(self.ledger, run_id, self.worker_id, self.clock(), self.config.lease_seconds,
                                     self._finish_run)
        if not result.held_by:
            self.adopt(run_id)
        return result

    def _own(self) -> tuple[list[str], list[str]] | None:
        """(runs whose jobs, single jobs) this supervisor may claim; None for any run's."""
        if not self.config.own_runs_only:
            return None
        with self._lock:
            return sorted(self.own_runs), sorted(self.own_jobs)

    def settings_for(self, run_id: str) -> Settings | None:
        """The settings a run's jobs execute with here, or None while this process cannot run them."""
        return self._run_settings.get(run_id, lambda: self.ledger.recorded_settings(run_id),
                                      lambda: self.settings or load_settings(), self.worker_id)

    # ------------------------------------------------------------------ scheduler
    def _scheduler_loop(self) -> None:
        # Woken by a job's end or a new job, the pass claims at once; the look for expired leases and
        # interrupted jobs (time-based, not what the wake is about) runs once per poll interval.
        upkeep_at = 0.0
        while not self._stop.is_set():
            upkeep = time.monotonic() >= upkeep_at
            if upkeep:
                upkeep_at = time.monotonic() + self.config.poll_seconds
            self._guarded("scheduler", lambda: self.schedule_once(upkeep=upkeep))
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

    def schedule_once(self, upkeep: bool = True) -> None:
        """One pass: (with ``upkeep``) expired leases taken over and interrupted jobs resumed, queued
        runs started, ready jobs claimed."""
        with self._pass_lock:
            if self._stopping:
                return
            if upkeep:
                ownership.take_over_expired(self.ledger, self.worker_id, self.clock(), self._finish_run)
                ownership.auto_resume(self.ledger, self._finish_run, resume=self.config.auto_resume, own=self._own())
            self._promote_queued_runs()
            self._claim_pending()

    def _promote_queued_runs(self) -> None:
        own = self._own()
        if own is not None:
            with self._lock:
                own = (set(own[0]) | set(self.own_jobs.values()))
        self.ledger.promote_queued_runs(self.config.max_concurrent_runs, own, self.worker_id, self.clock())

    def _claim_pending(self, only_run: str | None = None) -> None:
        """Claim ready pending jobs (only ``only_run``'s: one of its jobs just ended) while workers are free."""
        with self._claim_lock:  # one claimer at a time (a pass, or a job's end): the pool's bound holds
            with self._lock:
                free = self.config.max_workers - len(self._active)
            kinds = [k for k in self.handlers if self.config.kinds is None or k in self.config.kinds]
            own = self._own()
            if free <= 0 or not kinds or own == ([], []):
                return
            conds = ([ownership.owned(*own)] if own is not None else [])  # never another process's run (issue 12)
            conds += [Job.run_id == only_run] if only_run else []
            for job_id, run_id, verdict in self.ledger.pending_verdicts(kinds, conds, free * 4,
                                                                        auto_resume=self.config.auto_resume):
                if free <= 0:
                    break
                if verdict == SKIP:
                    self.ledger.transition(job_id, (PENDING,), CANCELLED, event="job.cancelled", finished=True,
                                           payload={"reason": "an upstream job did not complete"},
                                           extra={"error": "skipped: an upstream job failed or was cancelled"})
                    self._finish_run(run_id)
                elif verdict == READY and (settings := self.settings_for(run_id)) is not None \
                        and self._claim(job_id, settings):
                    free -= 1

    def _claim(self, job_id: str, settings: Settings | None = None) -> bool:
        ctx = retry.call_with_retry(retry.DATABASE, self._claim_row, job_id, settings, op="claim")
        if ctx is None:
            return False
        handler = self.handlers[ctx.kind]
        active = ActiveJob(ctx=ctx, handler=handler, started=time.monotonic())
        with self._lock:
            self._active[job_id] = active
            stopping = self._stopping
        if stopping:
            # Claimed while shutdown was taking its snapshot of running jobs: it would never be asked
            # to stop, and a job that waits would keep the process from exiting.
            ctx.request_cancel("shutdown")
        try:
            active.future = self._executor.submit(self._execute, active)  # type: ignore[union-attr]
        except RuntimeError:  # executor shut down between claim and submit
            with self._lock:
                self._active.pop(job_id, None)
            self.ledger.transition(job_id, (RUNNING,), INTERRUPTED, owner=self.worker_id, event="job.interrupted",
                                   payload={"reason": "shutdown"}, release=True)
            return False
        return True

    def _claim_row(self, job_id: str, settings: Settings | None = None) -> JobContext | None:
        """The claim itself, one transaction (retried whole on a transient database error)."""
        services = self.job_services(settings)
        now = self.clock()
        expires = now + timedelta(seconds=self.config.lease_seconds)
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.status == PENDING).values(
                status=RUNNING, lease_owner=self.worker_id, lease_expires_at=expires, heartbeat_at=now,
                attempt=Job.attempt + 1, started_at=func.coalesce(Job.started_at, now), stalled=False,
                cancel_requested=False))
            if res.rowcount != 1:
                return None
            job = s.get(Job, job_id)
            run = s.get(Run, job.run_id)
            self.events.emit("job.started", run_id=job.run_id, job_id=job_id, source="supervisor",
                             trace_id=job.trace_id, session=s,
                             payload={"kind": job.kind, "attempt": job.attempt, "worker": self.worker_id,
                                      "resumed": bool(job.checkpoint)})
            return JobContext(services, self, self, job.id, job.run_id, job.kind, job.name,
                              dict(job.params or {}), dict(job.checkpoint or {}), job.attempt, job.trace_id,
                              topic=run.topic if run else "", run_params=dict(run.params or {}) if run else {},
                              worker_id=self.worker_id)

    def job_services(self, settings: Settings | None = None) -> JobServices:
        """What a job gets; `settings`: its run's (settings_for), else this process's."""
        return JobServices(db=self.db, events=self.events, settings=settings or self.settings or load_settings(),
                           forum=self.forum, limits=self.limits)

    # ------------------------------------------------------------------ running a job
    def _execute(self, active: ActiveJob) -> None:
        ctx, active.thread = active.ctx, threading.current_thread()
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
                if retry.classify(exc) == "database":
                    # The database failed, not the job (a restart, a lost connection): hand the job
                    # back with its checkpoint; auto-resume runs it again once the database answers.
                    outcome = INTERRUPTED
                    logger.warning("job {} lost the database ({}); handing it back", ctx.job_id, explain(exc))
                else:
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
                ok = retry.call_with_retry(retry.DATABASE, lambda: self.ledger.transition(
                    ctx.job_id, ACTIVE_STATES, outcome, owner=self.worker_id, event=f"job.{outcome}",
                    payload=payload, release=True, finished=finished, extra=extra), op="finish_job")
                if not ok:
                    logger.warning("job {} finished as {} but this worker no longer owns it", ctx.job_id, outcome)
                elif not self._stopping:  # the jobs waiting for this one are claimed now, not at the next pass
                    with self._lock:
                        self._active.pop(ctx.job_id, None)  # its worker is free for them
                    try:
                        self._claim_pending(ctx.run_id)
                    except Exception as exc:  # noqa: BLE001 - the scheduler's next pass claims them
                        logger.warning("claiming after job {} failed: {}", ctx.job_id, explain(exc))
                self._finish_run(ctx.run_id)
        except Exception as exc:  # noqa: BLE001 - the lease will expire and another worker resumes it
            logger.error("could not record the end of job {}: {}", ctx.job_id, explain(exc))
        finally:
            with self._lock:
                self._active.pop(ctx.job_id, None)
            active.ended()
            self._wake.set()

    def write_checkpoint(self, ctx: JobContext) -> None:
        """CheckpointWriter: the job's checkpoint, now. Raises LeaseLost if this worker no longer owns it."""
        if not retry.call_with_retry(retry.DATABASE, self.ledger.write_checkpoint, ctx.job_id, self.worker_id,
                                     ctx.checkpoint, ctx.progress, ctx.pending_items, self.clock(), op="checkpoint"):
            ctx.request_cancel("lease_lost")
            raise LeaseLost(ctx.job_id)

    # ------------------------------------------------------------------ heartbeat loop
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.config.heartbeat_seconds):
            self._guarded("heartbeat", self.heartbeat_once)

    def heartbeat_once(self) -> None:
        """Renew this worker's leases and deliver cancels and timeouts. Nothing else runs here."""
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
            owned, cancel_requested = retry.call_with_retry(retry.DATABASE, self._renew_lease, ctx, expires,
                                                            op="lease")
            if not owned:
                # Someone else owns it now (or it was force-cancelled): stop and write nothing more.
                a.abandon()
                ctx.request_cancel("lease_lost")
                continue
            if cancel_requested:
                ctx.request_cancel("user")  # a cancel asked for by another process or replica
            timeout = a.handler.timeout
            if timeout and time.monotonic() - a.started > timeout and not ctx.cancelled:
                ctx.request_cancel("timeout")
                self.events.emit("job.timeout", run_id=ctx.run_id, job_id=ctx.job_id, source="supervisor",
                                 trace_id=ctx.trace_id, payload={"timeout_s": timeout})
        self._enforce_cancel_timeouts(now)
        self.heartbeats += 1

    def _renew_lease(self, ctx: JobContext, expires: datetime) -> tuple[bool, bool]:
        values: dict[str, Any] = {"lease_expires_at": expires, "heartbeat_at": from_epoch(ctx.last_heartbeat)}
        if ctx.progress is not None:
            values["progress"] = ctx.progress
        if ctx.message is not None:
            values["message"] = ctx.message
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.worker_id,
                                              Job.status.in_(ACTIVE_STATES)).values(**values))
            row = s.execute(select(Job.cancel_requested).where(Job.id == ctx.job_id)).first()
        return res.rowcount == 1, bool(row and row.cancel_requested)

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
            active.abandon()  # the thread may still be running; its result is ignored
        if self.ledger.transition(job_id, (CANCELLING,), CANCELLED, event="job.cancelled", release=True, finished=True,
                                  payload={"reason": "cancel timeout: the job did not stop in time; abandoned"}):
            with self.db.session() as s:
                run_id = s.scalar(select(Job.run_id).where(Job.id == job_id))
            self._finish_run(run_id)

    def wait_run(self, run_id: str, timeout: float) -> str:
        """Block until a run ends (for the command line and tests; pages never call this)."""
        # With auto-resume on, `interrupted` is a passing state: the run comes back by itself.
        final = RunState.FINAL + (() if self.config.auto_resume and self.running else (RunState.INTERRUPTED,))
        return self.ledger.wait_run(run_id, timeout, final)
