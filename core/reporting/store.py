"""Report rows: statuses, views, history, reconciliation with the job, pruning."""
from __future__ import annotations

import time
from pathlib import Path
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from core.infra.events import EventLog, EventRecord
from core.infra.models import Job, Report, utcnow
from core.infra.redact import redact
from core.reporting.files import delete_files
from core.reporting.inputs import KIND
from core.work.jobs import CANCELLED, CANCELLING, FAILED, PENDING, RUNNING

# Report row statuses
R_PENDING, R_RUNNING, R_COMPLETED, R_ERROR, R_CANCELLED = "pending", "running", "completed", "error", "cancelled"
REPORT_STATUSES = (R_PENDING, R_RUNNING, R_COMPLETED, R_ERROR, R_CANCELLED)
REPORT_OPEN = (R_PENDING, R_RUNNING)
REPORT_TERMINAL = (R_COMPLETED, R_ERROR, R_CANCELLED)
REPORT_EVENT_TYPES = ("report.queued", "report.started", "report.waiting", "report.stage", "report.type",
                      "report.outline", "report.section", "report.completed", "report.error", "report.cancelled",
                      "report.interrupted")
KEEP_REPORTS = 20          # newest Report rows kept per run; older rows and their files are deleted


@dataclass(frozen=True)
class ReportView:
    id: str
    run_id: str
    status: str
    stage: str
    progress: float
    report_type: str | None
    partial: bool
    title: str
    html_path: str | None
    md_path: str | None
    json_path: str | None
    error: str | None
    trace_id: str
    created_at: datetime
    updated_at: datetime

    @property
    def done(self) -> bool:
        return self.status in REPORT_TERMINAL

    def as_dict(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        d["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return d


def _view(r: Report) -> ReportView:
    return ReportView(r.id, r.run_id, r.status, r.stage, float(r.progress or 0.0), r.report_type, bool(r.partial),
                      r.title or "", r.html_path, r.md_path, r.json_path, r.error, r.trace_id or "", r.created_at,
                      r.updated_at)


def update_row(db, report_id: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    with db.session() as s:
        s.execute(update(Report).where(Report.id == report_id).values(**values))


def report_job_id(db, report_id: str) -> str | None:
    """The id of the job that writes a report."""
    with db.session() as s:
        run_id = s.scalar(select(Report.run_id).where(Report.id == report_id))
        if run_id is None:
            return None
        rows = s.execute(select(Job.id, Job.params, Job.checkpoint).where(Job.run_id == run_id, Job.kind == KIND)
                         .order_by(Job.created_at.desc())).all()
    for job_id, params, cp in rows:
        if (params or {}).get("report_id") == report_id or (cp or {}).get("report_id") == report_id:
            return job_id
    return None


def _reconcile(db, view: ReportView) -> ReportView:
    """A row left open by a job that ended without running its handler (cancelled while pending,
    skipped, force-cancelled) takes the job's outcome."""
    if view.status not in REPORT_OPEN:
        return view
    job_id = report_job_id(db, view.id)
    if job_id is None:
        return view
    with db.session() as s:
        job = s.get(Job, job_id)
        status, error = (job.status, job.error) if job else (None, None)
    if status == CANCELLED:
        update_row(db, view.id, status=R_CANCELLED, error=error if error and "skipped" in error else None)
    elif status == FAILED:
        update_row(db, view.id, status=R_ERROR, error=redact(error or "the report job failed")[:2000])
    else:
        return view
    return get_report(db, view.id, reconcile=False) or view


def get_report(db, report_id: str, *, reconcile: bool = True) -> ReportView | None:
    with db.session() as s:
        r = s.get(Report, report_id)
        view = _view(r) if r else None
    return _reconcile(db, view) if view is not None and reconcile else view


def list_reports(db, run_id: str | None = None, limit: int = 20) -> list[ReportView]:
    """Reports, newest first (of one run, or of every run)."""
    stmt = select(Report).order_by(Report.created_at.desc(), Report.id.desc()).limit(limit)
    if run_id is not None:
        stmt = stmt.where(Report.run_id == run_id)
    with db.session() as s:
        views = [_view(r) for r in s.scalars(stmt)]
    return [_reconcile(db, v) for v in views]


def latest_report(db, run_id: str, *, completed: bool = False) -> ReportView | None:
    for v in list_reports(db, run_id, limit=KEEP_REPORTS):
        if not completed or v.status == R_COMPLETED:
            return v
    return None


def wait_report(db, report_id: str, timeout: float, poll: float = 0.1) -> ReportView | None:
    """Block until a report ends and its job has settled (for the command line and tests; pages poll
    get_report)."""
    deadline = time.monotonic() + timeout
    job_id = None
    while True:
        view = get_report(db, report_id)
        if view is None or time.monotonic() >= deadline:
            return view
        if view.done:
            job_id = job_id or report_job_id(db, report_id)
            with db.session() as s:
                status = s.scalar(select(Job.status).where(Job.id == job_id)) if job_id else None
            if status not in (PENDING, RUNNING, CANCELLING):
                return view
        time.sleep(poll)


def report_events(events: EventLog, run_id: str, cursor: int = 0, *, report_id: str | None = None,
                  limit: int = 500) -> tuple[list[EventRecord], int]:
    """The report events of a run after `cursor`, and the next cursor (optionally of one report)."""
    rows, new_cursor = events.since(cursor, run_id=run_id, types=REPORT_EVENT_TYPES, limit=limit)
    if report_id is not None:
        rows = [e for e in rows if (e.payload or {}).get("report_id") == report_id]
    return rows, new_cursor


def prune_reports(db, run_id: str, keep: int | None = None) -> int:
    """Keep the newest `keep` (default KEEP_REPORTS) reports of a run; delete older finished ones and
    their files. Reports still pending or running are never deleted."""
    keep = KEEP_REPORTS if keep is None else max(1, int(keep))
    with db.session() as s:
        rows = s.execute(select(Report.id, Report.status, Report.html_path, Report.md_path, Report.json_path)
                         .where(Report.run_id == run_id)
                         .order_by(Report.created_at.desc(), Report.id.desc())).all()
    old = [r for r in rows[keep:] if r.status in REPORT_TERMINAL]
    for r in old:
        pdf = str(Path(r.html_path).with_suffix(".pdf")) if r.html_path else None  # a PDF export (core/reporting/pdf.py)
        delete_files((r.html_path, r.md_path, r.json_path, pdf), run_id)
    if old:
        with db.session() as s:
            s.execute(delete(Report).where(Report.id.in_([r.id for r in old])))
    return len(old)
