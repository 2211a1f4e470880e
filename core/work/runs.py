"""Read-side queries over runs and jobs for pages and the command line (no writes here).

Pages poll these every few seconds, so each reads only the columns it returns, through an index:
`list_runs` (newest first, by `ix_runs_created` / `ix_runs_kind_created`) and `job_summaries`
(a run's jobs without their checkpoint and result JSON, 50–130 KB each) are the light listings;
`get_job_summary` is one job's light row; `jobs_of` and `get_job` load the heavy JSON too, for
the one page or command that shows it (a live panel reads it again only when the job's `stamp`
changed: status, attempt, and the checkpoint's write count).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select

from core.i18n import Msg
from core.infra.db import Database
from core.infra.models import Job, Run, utcnow
from core.work.jobs import decode_message


@dataclass(frozen=True)
class RunView:
    id: str
    kind: str
    topic: str
    status: str
    mode: str
    trace_id: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    params: dict

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("created_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or utcnow()
        return (end - self.started_at).total_seconds()


def job_stamp(status: str, attempt: int, checkpoint_seq: int | None) -> tuple[str, int, int]:
    """What changes whenever a job's checkpoint or result may have (see JobSummary.stamp)."""
    return status, attempt or 0, checkpoint_seq or 0


@dataclass(frozen=True)
class JobSummary:
    """A job as a listing shows it: state, progress, lease; not its checkpoint or result."""
    id: str
    run_id: str
    kind: str
    name: str
    status: str
    attempt: int
    max_attempts: int
    progress: float
    message: Msg | str  # what it is doing, or how it ended: a Msg (pages render it with ui.i18n.show)
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    stalled: bool
    error: str | None
    trace_id: str
    started_at: datetime | None
    finished_at: datetime | None
    checkpoint_seq: int  # how many times its checkpoint was written (0 before the first, or in an older row)

    @property
    def stamp(self) -> tuple[str, int, int]:
        """Changes whenever the job's checkpoint or result may have: a poller that keeps the stamp it
        last read them at can skip reading them again (results are written with a status change)."""
        return job_stamp(self.status, self.attempt, self.checkpoint_seq)

    @property
    def message_en(self) -> str:
        """The message in English (command line, logs)."""
        return self.message.render("en") if isinstance(self.message, Msg) else self.message

    def as_dict(self) -> dict:
        d = asdict(self)
        d["message"] = self.message_en
        for k in ("lease_expires_at", "heartbeat_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


@dataclass(frozen=True)
class JobView(JobSummary):
    """A job with its checkpoint and result (the heavy JSON)."""
    checkpoint: dict
    result: dict | None


_RUN_COLUMNS = (Run.id, Run.kind, Run.topic, Run.status, Run.mode, Run.trace_id, Run.created_at, Run.started_at,
                Run.finished_at, Run.error, Run.params)
_JOB_COLUMNS = (Job.id, Job.run_id, Job.kind, Job.name, Job.status, Job.attempt, Job.max_attempts, Job.progress,
                Job.message, Job.lease_owner, Job.lease_expires_at, Job.heartbeat_at, Job.stalled, Job.error,
                Job.trace_id, Job.started_at, Job.finished_at, Job.checkpoint_seq)


# Built once: a page polls these every 2 s, and building a statement costs more than running it.
_NEWEST_RUNS = select(*_RUN_COLUMNS).order_by(Run.created_at.desc(), Run.id.desc()).limit(bindparam("limit"))
_NEWEST_RUNS_OF_KIND = _NEWEST_RUNS.where(Run.kind == bindparam("kind"))
_RUN = select(*_RUN_COLUMNS).where(Run.id == bindparam("run_id"))
_JOB_SUMMARIES = select(*_JOB_COLUMNS).where(Job.run_id == bindparam("run_id")).order_by(Job.created_at, Job.id)
_JOBS = (select(*_JOB_COLUMNS, Job.checkpoint, Job.result).where(Job.run_id == bindparam("run_id"))
         .order_by(Job.created_at, Job.id))
_JOB = select(*_JOB_COLUMNS, Job.checkpoint, Job.result).where(Job.id == bindparam("job_id"))
_JOB_SUMMARY = select(*_JOB_COLUMNS).where(Job.id == bindparam("job_id"))


def _run_view(r) -> RunView:
    return RunView(r.id, r.kind, r.topic or "", r.status, r.mode, r.trace_id, r.created_at, r.started_at,
                   r.finished_at, r.error, dict(r.params or {}))


def _job_fields(j) -> tuple:
    return (j.id, j.run_id, j.kind, j.name, j.status, j.attempt, j.max_attempts, j.progress or 0.0,
            decode_message(j.message), j.lease_owner, j.lease_expires_at, j.heartbeat_at, bool(j.stalled), j.error,
            j.trace_id, j.started_at, j.finished_at, j.checkpoint_seq or 0)


def _job_view(j) -> JobView:
    return JobView(*_job_fields(j), dict(j.checkpoint or {}), j.result)


def list_runs(db: Database, limit: int = 20, kind: str | None = None) -> list[RunView]:
    """The newest runs (of one kind, when given), newest first."""
    stmt, params = (_NEWEST_RUNS_OF_KIND, {"limit": limit, "kind": kind}) if kind else (_NEWEST_RUNS, {"limit": limit})
    with db.session() as s:
        return [_run_view(r) for r in s.execute(stmt, params)]


def get_run(db: Database, run_id: str) -> RunView | None:
    with db.session() as s:
        r = s.execute(_RUN, {"run_id": run_id}).first()
        return _run_view(r) if r else None


def job_summaries(db: Database, run_id: str) -> list[JobSummary]:
    """A run's jobs, oldest first, without checkpoint and result: what listings and live panels poll."""
    with db.session() as s:
        return [JobSummary(*_job_fields(j)) for j in s.execute(_JOB_SUMMARIES, {"run_id": run_id})]


def jobs_of(db: Database, run_id: str) -> list[JobView]:
    """A run's jobs, oldest first, with checkpoint and result (for code that reads them)."""
    with db.session() as s:
        return [_job_view(j) for j in s.execute(_JOBS, {"run_id": run_id})]


def get_job_summary(db: Database, job_id: str) -> JobSummary | None:
    """One job without its checkpoint and result (a live panel's poll; its `stamp` says whether
    they changed since the last read)."""
    with db.session() as s:
        j = s.execute(_JOB_SUMMARY, {"job_id": job_id}).first()
        return JobSummary(*_job_fields(j)) if j else None


def get_job(db: Database, job_id: str) -> JobView | None:
    """One job with its checkpoint and result."""
    with db.session() as s:
        j = s.execute(_JOB, {"job_id": job_id}).first()
        return _job_view(j) if j else None


def status_counts(db: Database, statuses: tuple[str, ...] | None = None) -> dict[str, int]:
    """Runs per status; only the given statuses when named (a seek on ix_runs_status_created
    instead of counting the whole history)."""
    stmt = select(Run.status, func.count()).group_by(Run.status)
    if statuses:
        stmt = stmt.where(Run.status.in_(list(statuses)))
    with db.session() as s:
        return dict(s.execute(stmt).all())
