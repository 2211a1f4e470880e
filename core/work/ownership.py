"""Who holds a run's jobs, whether that process is still alive, and taking over what dead ones left.

A job in `running` or `cancelling` is held by the worker named in its lease. Its holder is dead when
any of these shows it: the lease expired; the worker row says the process stopped; the row's
heartbeat is older than a lease; or the process is on this host and its pid is gone (a SIGKILL). A
dead holder's jobs are handed back as `interrupted` (compare-and-set on the owner, so a holder that
comes back finds it lost the lease and stops), and resumed from their checkpoints.

The supervisor's periodic recovery lives here too: expired leases taken over, interrupted jobs put
back to pending (auto-resume) or given up after their attempts.
"""
from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

from loguru import logger
from sqlalchemy import or_, select, update

from core.infra.models import Job, Run, Worker
from core.work.config import process_alive, stop_dead_local_workers
from core.work.ledger import Ledger
from core.work.states import JobState, RunState

ACTIVE = JobState.ACTIVE
Finish = Callable[[str], object]


@dataclass(frozen=True)
class Holder:
    """A process holding some of a run's jobs."""
    worker_id: str
    host: str
    pid: int | None
    alive: bool
    why: str  # what shows it alive (its last heartbeat) or dead (lease expired, process gone…)
    jobs: tuple[str, ...]

    def describe(self) -> str:
        where = f"host {self.host}, pid {self.pid}" if self.pid is not None else "no worker row"
        return f"worker {self.worker_id} ({where}): {self.why}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["jobs"] = list(self.jobs)
        return d


@dataclass
class TakeOver:
    """What Supervisor.take_over did: the live holders that stopped it, or what it handed back and resumed."""
    run_id: str
    held_by: list[Holder] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    dead: list[Holder] = field(default_factory=list)


def _ts(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if t else "never"


def _gone_or_stopped(worker: Worker) -> str:
    if worker.host == socket.gethostname() and not process_alive(worker.pid, worker.started_at):
        return f"process {worker.pid} is gone"
    if worker.stopped_at is not None:
        return f"its process stopped at {_ts(worker.stopped_at)}"
    return ""


def _heartbeat(worker: Worker, now: datetime, stale_after: float) -> tuple[bool, str]:
    if worker.heartbeat_at is None or worker.heartbeat_at < now - timedelta(seconds=stale_after):
        return False, f"no heartbeat since {_ts(worker.heartbeat_at)}"
    return True, f"last heartbeat {_ts(worker.heartbeat_at)}"


def judge(worker: Worker | None, lease_until: datetime | None, now: datetime,
          stale_after: float) -> tuple[bool, str]:
    """(alive, why) for the holder of a lease that runs until `lease_until`."""
    if worker is not None and (dead := _gone_or_stopped(worker)):
        return False, dead
    if lease_until is None or lease_until < now:
        return False, f"its lease expired at {_ts(lease_until)}"
    if worker is None:
        return True, f"its lease runs until {_ts(lease_until)}"
    return _heartbeat(worker, now, stale_after)


def judge_worker(worker: Worker, now: datetime, stale_after: float) -> tuple[bool, str]:
    """(alive, why) for a worker holding no lease (the one that submitted a run)."""
    dead = _gone_or_stopped(worker)
    return (False, dead) if dead else _heartbeat(worker, now, stale_after)


def run_holders(db, run_id: str, now: datetime, stale_after: float) -> list[Holder]:
    """The processes holding a run's running/cancelling jobs, each judged alive or dead; and, while
    the run is open, the process that submitted it (it holds the run between two jobs)."""
    with db.session() as s:
        rows = s.execute(select(Job.id, Job.lease_owner, Job.lease_expires_at)
                         .where(Job.run_id == run_id, Job.status.in_(ACTIVE))).all()
        run = s.execute(select(Run.owner, Run.status).where(Run.id == run_id)).first()
        owners = {owner for _, owner, _ in rows if owner}
        submitter = run.owner if run is not None and run.status in RunState.OPEN else None
        if submitter:
            owners.add(submitter)
        workers = {w.id: w for w in s.scalars(select(Worker).where(Worker.id.in_(owners)))} if owners else {}
        s.expunge_all()
    jobs: dict[str, list[str]] = {}
    until: dict[str, datetime | None] = {}
    for job_id, owner, expires in rows:
        owner = owner or ""
        jobs.setdefault(owner, []).append(job_id)
        if expires is not None and (until.get(owner) is None or expires > until[owner]):
            until[owner] = expires
        until.setdefault(owner, expires)
    out = []
    for owner, ids in jobs.items():
        w = workers.get(owner)
        alive, why = judge(w, until.get(owner), now, stale_after) if owner else (False, "no owner")
        out.append(Holder(owner, w.host if w else "?", w.pid if w else None, alive, why, tuple(ids)))
    w = workers.get(submitter or "")
    if w is not None and submitter not in jobs:
        alive, why = judge_worker(w, now, stale_after)
        out.append(Holder(submitter, w.host, w.pid, alive, f"it started the run, which is still open; {why}", ()))
    return out


def interrupt_owned_by(ledger: Ledger, owner: str, reason: str, finish: Finish, *, run_id: str | None = None,
                       expired_before: datetime | None = None) -> list[str]:
    """Hand a (dead) owner's jobs back as interrupted; returns their ids."""
    conds = [Job.lease_owner == owner, Job.status.in_(ACTIVE)]
    if run_id is not None:
        conds.append(Job.run_id == run_id)
    if expired_before is not None:
        conds.append(Job.lease_expires_at < expired_before)
    with ledger.db.session() as s:
        rows = s.execute(select(Job.id, Job.run_id).where(*conds)).all()
    out = []
    for job_id, job_run in rows:
        if ledger.transition(job_id, ACTIVE, JobState.INTERRUPTED, owner=owner, event="job.interrupted",
                             payload={"reason": reason, "previous_owner": owner}, release=True):
            out.append(job_id)
            finish(job_run)
    return out


def recover_dead_local_workers(ledger: Ledger, own_id: str, now: datetime, finish: Finish) -> list[str]:
    """Jobs owned by a supervisor process on this host that no longer exists are interrupted now,
    without waiting for their lease to expire (a restart after a crash)."""
    interrupted = []
    for wid in stop_dead_local_workers(ledger.db, own_id, now):
        interrupted += interrupt_owned_by(ledger, wid, f"owner process {wid} is gone", finish)
    return interrupted


def take_over_expired(ledger: Ledger, own_id: str, now: datetime, finish: Finish) -> None:
    """Jobs whose lease expired: interrupted (cancelled if a cancel was pending)."""
    with ledger.db.session() as s:
        rows = s.execute(select(Job.id, Job.lease_owner, Job.status, Job.run_id)
                         .where(Job.status.in_(ACTIVE), Job.lease_expires_at < now)).all()
    for job_id, owner, status, run_id in rows:
        if owner == own_id:
            continue  # our own heartbeat is late (e.g. a paused process); renewal will fix it
        target = JobState.CANCELLED if status == JobState.CANCELLING else JobState.INTERRUPTED
        if ledger.transition(job_id, (status,), target, owner=owner, expired_before=now,
                             event=f"job.{target}", release=True, finished=target == JobState.CANCELLED,
                             payload={"reason": "lease expired", "previous_owner": owner}):
            logger.warning("job {} of {} had an expired lease: {}", job_id, owner, target)
            finish(run_id)


def owned(runs: Iterable[str], jobs: Iterable[str] = ()):
    """The condition on Job for what a process owns: every job of `runs`, and the single `jobs`."""
    return or_(Job.run_id.in_(list(runs)), Job.id.in_(list(jobs)))


def auto_resume(ledger: Ledger, finish: Finish, *, resume: bool,
                own: tuple[Iterable[str], Iterable[str]] | None = None) -> None:
    """Interrupted jobs (those `own` = (runs, jobs) names, or every run's): back to pending, or failed
    once their attempts are used up."""
    conds = [Job.status == JobState.INTERRUPTED]
    if own is not None:
        if not any(own):
            return
        conds.append(owned(*own))
    with ledger.db.session() as s:
        rows = s.execute(select(Job.id, Job.run_id, Job.attempt, Job.max_attempts).where(*conds)).all()
    for job_id, run_id, attempt, max_attempts in rows:
        if attempt >= max_attempts:
            ledger.transition(job_id, (JobState.INTERRUPTED,), JobState.FAILED, event="job.failed", finished=True,
                              payload={"reason": f"gave up after {attempt} attempts"},
                              extra={"error": f"interrupted {attempt} times; gave up"})
            finish(run_id)
        elif resume:
            if ledger.transition(job_id, (JobState.INTERRUPTED,), JobState.PENDING, event="job.resumed",
                                 payload={"reason": "auto-resume", "attempt": attempt + 1}):
                with ledger.db.session() as s:
                    s.execute(update(Run).where(Run.id == run_id, Run.status == RunState.INTERRUPTED)
                              .values(status=RunState.RUNNING, finished_at=None))


def hand_back_pending(ledger: Ledger, runs: Iterable[str], jobs: Iterable[str], reason: str,
                      finish: Finish) -> list[str]:
    """Jobs nobody has claimed yet, of the runs (and the single jobs) a process owns, handed back as
    interrupted when it stops (so a run ends `interrupted`, resumable, not `running` with no one on it)."""
    runs, jobs = list(runs), list(jobs)
    if not runs and not jobs:
        return []
    with ledger.db.session() as s:
        rows = s.execute(select(Job.id, Job.run_id).where(owned(runs, jobs), Job.status == JobState.PENDING)).all()
    out = []
    for job_id, run_id in rows:
        if ledger.transition(job_id, (JobState.PENDING,), JobState.INTERRUPTED, event="job.interrupted",
                             payload={"reason": reason}):
            out.append(job_id)
    for run_id in {r for _, r in rows}:
        finish(run_id)
    return out


def take_over(ledger: Ledger, run_id: str, worker_id: str, now: datetime, stale_after: float,
              finish: Finish) -> TakeOver:
    """`resume` for `worker_id`: the run's jobs held by dead processes are handed back and its
    interrupted, failed and cancelled jobs go back to pending; nothing is taken while a live process
    holds some of its jobs (`held_by` names it)."""
    with ledger.db.session() as s:
        if s.get(Run, run_id) is None:
            raise KeyError(f"no run {run_id}")
    holders = run_holders(ledger.db, run_id, now, stale_after)
    live = [h for h in holders if h.alive and h.worker_id != worker_id]
    if live:
        return TakeOver(run_id, held_by=live)
    taken = []
    for h in holders:
        if h.worker_id != worker_id:
            taken += interrupt_owned_by(ledger, h.worker_id, f"taken over by resume: {h.why}", finish, run_id=run_id)
    resumed = ledger.resume_run(run_id)
    return TakeOver(run_id, taken=taken, resumed=resumed, dead=[h for h in holders if not h.alive])
