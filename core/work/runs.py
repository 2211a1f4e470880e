"""Read-side queries over runs and jobs for pages and the command line (no writes here)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select

from core.infra.db import Database
from core.infra.models import Job, Run, utcnow


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


@dataclass(frozen=True)
class JobView:
    id: str
    run_id: str
    kind: str
    name: str
    status: str
    attempt: int
    max_attempts: int
    progress: float
    message: str
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    stalled: bool
    error: str | None
    trace_id: str
    started_at: datetime | None
    finished_at: datetime | None
    checkpoint: dict
    result: dict | None

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("lease_expires_at", "heartbeat_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def _run_view(r: Run) -> RunView:
    return RunView(r.id, r.kind, r.topic or "", r.status, r.mode, r.trace_id, r.created_at, r.started_at,
                   r.finished_at, r.error, dict(r.params or {}))


def _job_view(j: Job) -> JobView:
    return JobView(j.id, j.run_id, j.kind, j.name, j.status, j.attempt, j.max_attempts, j.progress or 0.0,
                   j.message or "", j.lease_owner, j.lease_expires_at, j.heartbeat_at, bool(j.stalled), j.error,
                   j.trace_id, j.started_at, j.finished_at, dict(j.checkpoint or {}), j.result)


def list_runs(db: Database, limit: int = 20, kind: str | None = None) -> list[RunView]:
    stmt = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(Run.kind == kind)
    with db.session() as s:
        return [_run_view(r) for r in s.scalars(stmt)]


def get_run(db: Database, run_id: str) -> RunView | None:
    with db.session() as s:
        r = s.get(Run, run_id)
        return _run_view(r) if r else None


def jobs_of(db: Database, run_id: str) -> list[JobView]:
    with db.session() as s:
        return [_job_view(j) for j in s.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.created_at, Job.id))]


def get_job(db: Database, job_id: str) -> JobView | None:
    with db.session() as s:
        j = s.get(Job, job_id)
        return _job_view(j) if j else None


def status_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return dict(s.execute(select(Run.status, func.count()).group_by(Run.status)).all())
