"""The append-only parts of a job's checkpoint, stored once per item (table job_items).

An engine's checkpoint used to carry every source document it had found, rewritten whole after
every node (120-134 KB, ~22 times per engine; issue 11). Now the checkpoint JSON keeps what
changes (plan, paragraph states, summaries, counters) and each source is inserted once, in the
same transaction as the first checkpoint that refers to it, so the two never disagree:

    ctx.save_checkpoint(state, append={"sources": [(n, doc_dict), ...]})

The supervisor's checkpoint write calls `store_items` inside its lease-checked UPDATE's
transaction; readers call `read_items`. Storing is idempotent (a retried transaction first
deletes the numbers it is about to write).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from core.infra.models import JobItem

Appends = Mapping[str, Iterable[tuple[int, Any]]]


def store_items(s: Session, job_id: str, appends: Appends | None) -> int:
    """Insert items (list name → [(n, data), …]) for a job inside the caller's transaction."""
    written = 0
    for name, items in (appends or {}).items():
        rows = [{"job_id": job_id, "list": name, "n": int(n), "data": data} for n, data in items]
        if not rows:
            continue
        s.execute(delete(JobItem).where(JobItem.job_id == job_id, JobItem.list == name,
                                        JobItem.n >= min(r["n"] for r in rows)))
        s.execute(insert(JobItem), rows)
        written += len(rows)
    return written


def read_items(source: Any, job_id: str, name: str, *, upto: int | None = None, after: int = 0) -> list[Any]:
    """A job's items of list `name`, in number order (`after` < n <= `upto`). `source` is a
    Session or a core.infra.db.Database."""
    stmt = select(JobItem.n, JobItem.data).where(JobItem.job_id == job_id, JobItem.list == name, JobItem.n > after)
    if upto is not None:
        stmt = stmt.where(JobItem.n <= upto)
    stmt = stmt.order_by(JobItem.n)
    if isinstance(source, Session):
        rows = source.execute(stmt).all()
    else:
        with source.session() as s:
            rows = s.execute(stmt).all()
    out: list[Any] = []
    for n, data in rows:  # positions are contiguous from 1; a hole (never expected) stays visible as None
        while len(out) + after + 1 < n:
            out.append(None)
        out.append(data)
    return out
