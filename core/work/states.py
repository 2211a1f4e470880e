"""Job and run states: one enum each, with the named groups every module reads.

Job states (after Dagster/Prefect):
  pending → running → completed | failed | cancelled
  running → cancelling → cancelled            (cancel requested; forced after a timeout)
  running | cancelling → interrupted          (the owning process died, or shut down)
  interrupted → pending                       (resumed from its checkpoint)

Groups: OPEN (not ended yet: pending, running, cancelling), ACTIVE (owned by a worker: running,
cancelling), FINAL (ended for good: completed, failed, cancelled). `interrupted` is in none of
them: it is final only when nothing will resume it (auto-resume off, or attempts exhausted).

Members are `str` (StrEnum), so they compare equal to the strings stored in the database.
"""
from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


# The groups (tuples: SQLAlchemy's in_() and `x in group` both take them).
JobState.OPEN = (JobState.PENDING, JobState.RUNNING, JobState.CANCELLING)  # type: ignore[attr-defined]
JobState.ACTIVE = (JobState.RUNNING, JobState.CANCELLING)  # type: ignore[attr-defined]
JobState.FINAL = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)  # type: ignore[attr-defined]


class RunState(StrEnum):
    """Runs: queued (waiting for a slot) → running → one of

      completed           every job completed, nothing fell back
      completed_degraded  every job completed, but an LLM call fell back to the offline analyst, a web
                          search failed, or an engine found no sources (the reasons are stored with the
                          run: core.work.outcomes)
      report_failed       the engines' work is complete and usable; the report job failed (retry it)
      failed | cancelled | interrupted
      insufficient_data   an analysis whose topic the data does not cover ends there, without a report

    Groups: OPEN (not ended), FINAL (ended for good), SUCCEEDED (every job completed: completed and
    completed_degraded), USABLE (the engines' results are complete: SUCCEEDED and report_failed),
    RESUMABLE (`resume` has jobs to put back: interrupted, failed, cancelled, report_failed)."""
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    COMPLETED_DEGRADED = "completed_degraded"
    REPORT_FAILED = "report_failed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    INSUFFICIENT_DATA = "insufficient_data"


RunState.OPEN = (RunState.QUEUED, RunState.RUNNING, RunState.CANCELLING)  # type: ignore[attr-defined]
RunState.FINAL = (RunState.COMPLETED, RunState.COMPLETED_DEGRADED,  # type: ignore[attr-defined]
                  RunState.REPORT_FAILED, RunState.FAILED, RunState.CANCELLED, RunState.INSUFFICIENT_DATA)
RunState.SUCCEEDED = (RunState.COMPLETED, RunState.COMPLETED_DEGRADED)  # type: ignore[attr-defined]
RunState.USABLE = RunState.SUCCEEDED + (RunState.REPORT_FAILED,)  # type: ignore[attr-defined]
RunState.RESUMABLE = (RunState.INTERRUPTED, RunState.FAILED, RunState.CANCELLED,  # type: ignore[attr-defined]
                      RunState.REPORT_FAILED)


def job_final(status: str, *, auto_resume: bool) -> bool:
    """Has a job ended for good? `interrupted` has only when nothing will resume it."""
    return status in JobState.FINAL or (status == JobState.INTERRUPTED and not auto_resume)
