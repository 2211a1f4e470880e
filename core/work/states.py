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
    """Runs: queued (waiting for a slot) → running → completed | failed | cancelled | interrupted, and
    insufficient_data: an analysis whose topic the data does not cover ends there, without a report."""
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    INSUFFICIENT_DATA = "insufficient_data"


RunState.OPEN = (RunState.QUEUED, RunState.RUNNING, RunState.CANCELLING)  # type: ignore[attr-defined]
RunState.FINAL = (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED,  # type: ignore[attr-defined]
                  RunState.INSUFFICIENT_DATA)


def job_final(status: str, *, auto_resume: bool) -> bool:
    """Has a job ended for good? `interrupted` has only when nothing will resume it."""
    return status in JobState.FINAL or (status == JobState.INTERRUPTED and not auto_resume)
