"""The durable side of runs and jobs: compare-and-set transitions, submitting, ending and resuming runs.

Everything here is a database write that any process may make (a page queuing a run, the command
line resuming one, a supervisor finishing a job); the supervisor adds only what needs a live
worker (claims, leases, heartbeats, cancel). Each transition is a compare-and-set UPDATE whose
event commits with it, so two processes never both move the same job.

A transaction that emits an event opens through EventLog.ordered_session(): this process's queued
events are written first, so e.g. `job.completed` sorts after the job's own node events.

Dependencies are stored on the job as a list: a plain job id must complete; an entry
{"job": id, "until": "final"} only has to end, whatever the outcome (JobSpec.after_any_outcome).
"""
from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime
from typing import Any, Callable, Iterable

from loguru import logger
from sqlalchemy import case, exists, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.infra.db import Database, explain
from core.infra.events import EventLog
from core.infra.models import Job, Run, utcnow
from core.infra.tracing import child_trace_id, new_trace_id
from core.work.checkpoints import store_items
from core.work.jobs import HandlerRegistry, JobSpec, encode_message, ended_message
from core.work import outcomes
from core.work.states import JobState, RunState, job_final

WAIT, READY, SKIP = "wait", "ready", "skip"


def dependency_entries(spec: JobSpec, ids: dict[str, str]) -> list:
    """The stored form of a spec's dependencies (names resolved to job ids; unknown names dropped)."""
    out: list = []
    for name in spec.depends_on:
        if name in ids:
            out.append({"job": ids[name], "until": "final"} if spec.after_any_outcome else ids[name])
    return out


def parse_dependencies(raw: Iterable | None) -> list[tuple[str, bool]]:
    """(job id, only has to end) per stored dependency."""
    out = []
    for d in raw or []:
        if isinstance(d, dict):
            out.append((str(d.get("job")), d.get("until") == "final"))
        else:
            out.append((str(d), False))
    return out


def readiness(deps: list[tuple[str, bool]], status: dict[str, str], *, auto_resume: bool) -> str:
    """READY to claim, WAIT, or SKIP (a dependency that had to complete failed or was cancelled).
    A dependency whose row is gone counts as completed."""
    verdict = READY
    for job_id, any_outcome in deps:
        st = status.get(job_id, JobState.COMPLETED)
        if any_outcome:
            if not job_final(st, auto_resume=auto_resume):
                verdict = WAIT
        elif st in (JobState.FAILED, JobState.CANCELLED):
            return SKIP
        elif st != JobState.COMPLETED:
            verdict = WAIT
    return verdict


class Endings:
    """Jobs and runs ending in this process, counted: a waiter (wait_run, a report waiting for the
    forum's last speeches) wakes as soon as one ends instead of at its next look. Waiters still look
    every so often: jobs of other processes end without telling this one."""

    def __init__(self):
        self._cond = threading.Condition()
        self._seq = 0

    def seq(self) -> int:
        with self._cond:
            return self._seq

    def ended(self) -> None:
        with self._cond:
            self._seq += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Until something ends after ``seen`` (a seq() taken before looking), at most ``timeout`` s."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seq != seen, max(0.0, timeout))


ENDINGS = Endings()
# How often wait_run looks at a run that nothing in this process told it about: each look is a read
# and a turn of the interpreter beside the run's own threads (at 0.05 s, 0.1-0.2 s of an analysis's
# CPU), and a run this process executes wakes it as soon as it ends.
WAIT_LOOK_S = 0.5


class Ledger:
    def __init__(self, db: Database, events: EventLog, handlers: HandlerRegistry, *, max_attempts: int = 3,
                 events_per_run: int = 5000, clock: Callable[[], datetime] = utcnow):
        self.db, self.events, self.handlers = db, events, handlers
        self.max_attempts, self.events_per_run = max_attempts, events_per_run
        self.clock = clock

    # ------------------------------------------------------------------ transitions
    def transition(self, job_id: str, from_states: Iterable[str], to_state: str, *, owner: str | None = None,
                   expired_before=None, event: str | None = None, payload: dict | None = None,
                   release: bool = False, finished: bool = False, extra: dict | None = None) -> bool:
        """Compare-and-set a job's status; the event commits with it. False if someone else moved it first."""
        from_states = tuple(from_states)
        conds = [Job.id == job_id, Job.status.in_(from_states)]
        if owner is not None:
            conds.append(Job.lease_owner == owner)
        if expired_before is not None:
            conds.append(Job.lease_expires_at < expired_before)
        values: dict[str, Any] = {"status": to_state, **(extra or {})}
        if "message" not in values and (to_state in JobState.FINAL or to_state == JobState.INTERRUPTED
                                        or (to_state == JobState.PENDING and JobState.PENDING not in from_states)):
            # how it ended (or that it waits to resume), never what it was doing before
            values["message"] = encode_message(ended_message(
                to_state, error=values.get("error"), reason=(payload or {}).get("reason"),
                checkpoint=values.get("checkpoint")))
        if release:
            values.update(lease_owner=None, lease_expires_at=None)
        if finished:
            values["finished_at"] = self.clock()
        with (self.events.ordered_session() if event else self.db.session()) as s:
            res = s.execute(update(Job).where(*conds).values(**values))
            if res.rowcount != 1:
                return False
            if event:
                run_id, trace = s.execute(select(Job.run_id, Job.trace_id).where(Job.id == job_id)).one()
                self.events.emit(event, run_id=run_id, job_id=job_id, source="supervisor", trace_id=trace,
                                 session=s, payload={"from": [str(f) for f in from_states], "to": str(to_state),
                                                     **(payload or {})})
        if to_state in JobState.FINAL or to_state == JobState.INTERRUPTED:
            ENDINGS.ended()
        return True

    def write_checkpoint(self, job_id: str, owner: str, checkpoint: dict, progress: float | None,
                         items: Any, now: datetime) -> bool:
        """The job's checkpoint (and the items it first refers to, in the same transaction), only while
        `owner` holds the job's lease; False when it does not any more."""
        values: dict[str, Any] = {"checkpoint": checkpoint, "heartbeat_at": now, "stalled": False,
                                  "checkpoint_seq": func.coalesce(Job.checkpoint_seq, 0) + 1}
        if progress is not None:
            values["progress"] = progress
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner,
                                              Job.status.in_(JobState.ACTIVE)).values(**values))
            if res.rowcount != 1:
                return False
            store_items(s, job_id, items)
            return True

    def recorded_settings(self, run_id: str) -> dict | None:
        """The settings a run recorded for its jobs (core.work.run_settings), None before they were."""
        with self.db.session() as s:
            return s.scalar(select(Run.settings).where(Run.id == run_id))

    def job_status(self, job_id: str) -> tuple[str, str]:
        with self.db.session() as s:
            return tuple(s.execute(select(Job.status, Job.run_id).where(Job.id == job_id)).one())

    # ------------------------------------------------------------------ submitting
    def _check_kind(self, spec: JobSpec) -> None:
        if spec.kind not in self.handlers:
            raise ValueError(f"no handler is registered for job kind '{spec.kind}'")

    def _job_row(self, spec: JobSpec, job_id: str, run_id: str, name: str, deps: list, trace: str, now) -> Job:
        return Job(id=job_id, run_id=run_id, kind=spec.kind, name=name, status=JobState.PENDING, depends_on=deps,
                   params=spec.params, max_attempts=spec.max_attempts or self.max_attempts,
                   trace_id=child_trace_id(trace), created_at=now, checkpoint={})

    def submit_run(self, jobs: Iterable[JobSpec], *, kind: str = "analysis", topic: str = "",
                   params: dict | None = None, mode: str = "offline", settings: dict | None = None,
                   owner: str | None = None) -> str:
        """Create a queued run and its pending jobs; returns the run id. Never blocks on work.
        `settings`: what its jobs execute with (core.work.run_settings.record); `owner`: the worker
        submitting it."""
        jobs = list(jobs)
        if not jobs:
            raise ValueError("a run needs at least one job")
        names = [j.name or j.kind for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique within a run: {names}")
        for spec in jobs:
            self._check_kind(spec)
            for dep in spec.depends_on:
                if dep not in names:
                    raise ValueError(f"job '{spec.name or spec.kind}' depends on unknown job '{dep}'")
        run_id = secrets.token_hex(6)
        trace = new_trace_id()
        ids = {name: f"{run_id}-{name}"[:32] for name in names}
        now = self.clock()
        with self.events.ordered_session() as s:
            s.add(Run(id=run_id, kind=kind, topic=topic, status=RunState.QUEUED, mode=mode, params=params or {},
                      trace_id=trace, created_at=now, settings=settings,
                      owner=owner))
            s.flush()
            for spec, name in zip(jobs, names):
                s.add(self._job_row(spec, ids[name], run_id, name, dependency_entries(spec, ids), trace, now))
            self.events.emit("run.queued", run_id=run_id, source="supervisor", trace_id=trace, session=s,
                             payload={"kind": kind, "topic": topic[:200], "jobs": names, "mode": mode})
        return run_id

    def add_jobs(self, run_id: str, jobs: Iterable[JobSpec]) -> list[str]:
        """Add jobs to an existing run (e.g. re-run one engine). The run is reopened if it had finished."""
        jobs = list(jobs)
        with self.events.ordered_session() as s:
            existing = dict(s.execute(select(Job.name, Job.id).where(Job.run_id == run_id)).all())
            # Reopened before the insert, in one statement on the run's row, which then stays locked (on
            # SQLite: the write lock) until these jobs are committed. A run ending this instant
            # (maybe_finish_run locks the row first) either ended before and is reopened here, or sees these
            # jobs and stays open. Deciding from a status read beforehand lost that race: a run completed
            # between the read and the insert kept its new job pending, never claimed. finished_at comes
            # first: MySQL assigns left to right, so it must look at the status before the change.
            opened = Run.status.in_(RunState.OPEN)
            s.execute(update(Run).where(Run.id == run_id).ordered_values(
                (Run.finished_at, case((opened, Run.finished_at), else_=None)),
                (Run.status, case((opened, Run.status), else_=RunState.RUNNING))))
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id}")
            ids = []
            now = self.clock()
            for spec in jobs:
                self._check_kind(spec)
                base = spec.name or spec.kind
                name, n = base, 2
                while name in existing:
                    name, n = f"{base}#{n}", n + 1
                job_id = f"{run_id}-{name}"[:32]
                row = self._job_row(spec, job_id, run_id, name, dependency_entries(spec, existing), run.trace_id, now)
                if run.status == RunState.CANCELLING:
                    # A job added while its run is being cancelled (a forum round's host, the report) is
                    # cancelled at once: the cancel reaches it, and it never runs.
                    row.status, row.finished_at, row.error = JobState.CANCELLED, now, "skipped: the run is being cancelled"
                    row.message = encode_message(ended_message(JobState.CANCELLED, error=row.error))
                s.add(row)
                existing[name] = job_id
                ids.append(job_id)
            self.events.emit("run.jobs_added", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                             payload={"jobs": ids})
        return ids

    def add_dependencies(self, job_id: str, job_ids: Iterable[str], *, any_outcome: bool = True) -> bool:
        """Make a still-pending job wait for more jobs too (a pending report learns of an engine re-run).
        False when the job is no longer pending."""
        with self.db.session() as s:
            row = s.execute(select(Job.depends_on).where(Job.id == job_id, Job.status == JobState.PENDING)).first()
            if row is None:
                return False
            deps = list(row[0] or [])
            deps += [{"job": j, "until": "final"} if any_outcome else j for j in job_ids]
            res = s.execute(update(Job).where(Job.id == job_id, Job.status == JobState.PENDING).values(depends_on=deps))
            return res.rowcount == 1

    # ------------------------------------------------------------------ ending and resuming
    def maybe_finish_run(self, run_id: str | None, cancelling: bool = False) -> str | None:
        """Set a run's final status once all its jobs have ended (core.work.outcomes.final_status): a run
        whose jobs all completed is completed_degraded when something fell back (the reasons go to
        Run.params["degraded"]); one whose only failure is its report is report_failed."""
        if not run_id:
            return None
        with self.db.session() as s:
            # A job still open (the common case: any job but the run's last) means nothing to do, and
            # the event log need not be flushed for it (an ordered session waits for its writer).
            status = s.scalar(select(Run.status).where(Run.id == run_id))
            if status in RunState.OPEN and s.scalar(select(Job.id).where(
                    Job.run_id == run_id, Job.status.in_(JobState.OPEN)).limit(1)) is not None:
                return None
        with self.events.ordered_session() as s:
            # The row locked before the jobs are read: jobs added this instant (add_jobs holds the row
            # until they are committed) are then seen here.
            run = s.scalars(select(Run).where(Run.id == run_id).with_for_update()).one_or_none()
            if run is None or run.status in RunState.FINAL:
                return run.status if run else None
            rows = s.execute(select(Job.id, Job.name, Job.kind, Job.status, Job.error)
                             .where(Job.run_id == run_id).order_by(Job.created_at, Job.id)).all()
            statuses = [r.status for r in rows]
            final = outcomes.final_status(rows, cancelling=run.status == RunState.CANCELLING or cancelling)
            if final is None:
                return None
            degraded: list[dict] = []
            if final in RunState.USABLE:
                degraded = outcomes.degraded_reasons(s, run_id, outcomes.decisive_jobs(rows))
                if degraded and final == RunState.COMPLETED:
                    final = RunState.COMPLETED_DEGRADED
            if run.status == final:
                return final
            if final == RunState.COMPLETED:
                error = None
            elif final == RunState.COMPLETED_DEGRADED:
                error = "degraded: " + ", ".join(sorted({d["reason"] for d in degraded}))
            elif final == RunState.REPORT_FAILED:
                error = next((r.error for r in reversed(rows) if r.kind == "report" and r.error), None) \
                    or "the report job failed"
            else:
                error = f"jobs: {', '.join(sorted(set(statuses)))}"
            values: dict[str, Any] = {"status": final, "error": error,
                                      "finished_at": self.clock() if final != RunState.INTERRUPTED else None}
            params = dict(run.params or {})
            if degraded or "degraded" in params:
                values["params"] = {**params, "degraded": degraded}
            # Atomic against a job added meanwhile (a report requested the instant the last one ended):
            # the run is final only if, at the moment of writing, none of its jobs is still open.
            still_open = exists().where(Job.run_id == run_id, Job.status.in_(JobState.OPEN))
            res = s.execute(update(Run).where(Run.id == run_id, Run.status == run.status, ~still_open)
                            .values(**values))
            if res.rowcount == 1:
                payload: dict[str, Any] = {"jobs": {st: statuses.count(st) for st in set(statuses)}}
                if degraded:
                    payload["degraded"] = degraded
                self.events.emit(f"run.{final}", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                                 payload=payload)
        ENDINGS.ended()
        if final != RunState.INTERRUPTED:
            try:
                self.events.compact(run_id, self.events_per_run)
            except SQLAlchemyError as exc:
                logger.warning("event compaction for run {} failed: {}", run_id, explain(exc))
        return final

    def end_run(self, run_id: str, status: str, error: str, payload: dict | None = None) -> bool:
        """End an open run with a final status a job decided (e.g. insufficient_data), then cancel its
        pending jobs; running ones are left to finish. Returns False when the run was not open."""
        if status not in RunState.FINAL:
            raise ValueError(f"not a final run status: {status}")
        with self.events.ordered_session() as s:
            run = s.get(Run, run_id)
            if run is None or run.status not in RunState.OPEN:
                return False
            res = s.execute(update(Run).where(Run.id == run_id, Run.status == run.status).values(
                status=status, finished_at=self.clock(), error=error[:2000]))
            if res.rowcount != 1:
                return False
            self.events.emit(f"run.{status}", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                             payload=payload or {})
            pending = list(s.scalars(select(Job.id).where(Job.run_id == run_id, Job.status == JobState.PENDING)))
        ENDINGS.ended()
        for job_id in pending:
            self.transition(job_id, (JobState.PENDING,), JobState.CANCELLED, event="job.cancelled", finished=True,
                            payload={"reason": status}, extra={"error": f"skipped: run ended {status}"})
        return True

    def pending_verdicts(self, kinds: list[str], conds: list, limit: int, *,
                         auto_resume: bool) -> list[tuple[str, str, str]]:
        """(job id, run id, READY | WAIT | SKIP) of up to ``limit`` pending jobs of ``kinds`` in running
        runs that meet ``conds`` (more conditions on Job), oldest first."""
        stmt = (select(Job.id, Job.depends_on, Job.run_id).join(Run, Run.id == Job.run_id)
                .where(Job.status == JobState.PENDING, Run.status == RunState.RUNNING, Job.kind.in_(kinds), *conds))
        with self.db.session() as s:
            candidates = s.execute(stmt.order_by(Job.created_at, Job.id).limit(limit)).all()
            deps = {job_id: parse_dependencies(raw) for job_id, raw, _ in candidates}
            dep_ids = {d for ds in deps.values() for d, _ in ds}
            dep_status = dict(s.execute(select(Job.id, Job.status).where(Job.id.in_(dep_ids))).all()) if dep_ids else {}
        return [(job_id, run_id, readiness(deps[job_id], dep_status, auto_resume=auto_resume))
                for job_id, _, run_id in candidates]

    def promote_queued_runs(self, max_concurrent: int, run_ids: set[str] | None, worker_id: str,
                            now: datetime) -> None:
        """Queued runs (of ``run_ids``, or any) start while fewer than ``max_concurrent`` are running."""
        with self.db.session() as s:
            running = s.scalar(select(func.count()).select_from(Run).where(
                Run.status.in_((RunState.RUNNING, RunState.CANCELLING))))
            free = max_concurrent - (running or 0)
            if free <= 0 or run_ids == set():
                return
            stmt = select(Run.id, Run.trace_id).where(Run.status == RunState.QUEUED)
            if run_ids is not None:
                stmt = stmt.where(Run.id.in_(run_ids))
            queued = s.execute(stmt.order_by(Run.created_at).limit(free)).all()
        for run_id, trace in queued:
            with self.db.session() as s:
                res = s.execute(update(Run).where(Run.id == run_id, Run.status == RunState.QUEUED)
                                .values(status=RunState.RUNNING, started_at=now))
                if res.rowcount == 1:
                    self.events.emit("run.started", run_id=run_id, source="supervisor", trace_id=trace, session=s,
                                     payload={"worker": worker_id})

    def mark_cancelling(self, run_id: str) -> tuple[str | None, list[str]]:
        """A run's cancel begins: (its final status, []) if it has already ended, else (None, the ids of
        its jobs that have not ended) with the run now `cancelling`. KeyError for an unknown run."""
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id}")
            if run.status in RunState.FINAL:
                return run.status, []
            prev, run.status = run.status, RunState.CANCELLING
            self.events.emit("run.cancelling", run_id=run_id, source="supervisor", trace_id=run.trace_id, session=s,
                             payload={"from": prev})
            return None, list(s.scalars(select(Job.id).where(Job.run_id == run_id, Job.status.not_in(JobState.FINAL))))

    def resume_run(self, run_id: str, extra_attempts: int = 1) -> list[str]:
        """Put a run's interrupted, failed or cancelled jobs back to pending, keeping their checkpoints."""
        with self.events.ordered_session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id}")
            if run.status in RunState.OPEN:
                if not s.scalar(select(func.count()).select_from(Job).where(Job.run_id == run_id,
                                                                             Job.status == JobState.INTERRUPTED)):
                    return []
            jobs = s.scalars(select(Job).where(Job.run_id == run_id, Job.status.in_(
                (JobState.INTERRUPTED, JobState.FAILED, JobState.CANCELLED)))).all()
            resumed = []
            for job in jobs:
                job.status = JobState.PENDING
                job.lease_owner = None
                job.lease_expires_at = None
                job.cancel_requested = False
                job.error = None
                job.finished_at = None
                job.message = encode_message(ended_message(JobState.PENDING))
                job.max_attempts = max(job.max_attempts, job.attempt + extra_attempts)
                resumed.append(job.id)
                self.events.emit("job.resumed", run_id=run_id, job_id=job.id, source="supervisor",
                                 trace_id=job.trace_id, session=s,
                                 payload={"checkpoint_keys": sorted((job.checkpoint or {}).keys())})
            if resumed:
                run.status, run.finished_at, run.error = RunState.RUNNING, None, None
                self.events.emit("run.resumed", run_id=run_id, source="supervisor", trace_id=run.trace_id,
                                 session=s, payload={"jobs": resumed})
        return resumed

    # ------------------------------------------------------------------ waiting (command line, tests)
    def wait_jobs_ended(self, job_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = ENDINGS.seq()
            with self.db.session() as s:
                statuses = list(s.scalars(select(Job.status).where(Job.id.in_(job_ids))))
            if all(st in JobState.FINAL or st == JobState.INTERRUPTED for st in statuses):
                return
            if time.monotonic() >= deadline:
                return
            # woken at once by a job ending in this process; the short look is for a job of another
            # process (a cancel asked from a page while a worker runs the job)
            ENDINGS.wait(seen, min(0.05, max(0.0, deadline - time.monotonic())))

    def wait_run(self, run_id: str, timeout: float, final: tuple[str, ...]) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            seen = ENDINGS.seq()
            with self.db.session() as s:
                status = s.scalar(select(Run.status).where(Run.id == run_id))
            if status in final or status is None or time.monotonic() >= deadline:
                return status
            # woken at once by a job or run ending in this process; the look is for other processes'
            ENDINGS.wait(seen, min(WAIT_LOOK_S, max(0.0, deadline - time.monotonic())))
