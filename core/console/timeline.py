"""Where a run's time went: its jobs and their nodes as rows a Gantt chart can draw.

    run_timeline(db, run_id) -> DataFrame, one row per bar:
        kind       "job" or "node"
        engine     the job's kind (query, media, insight, report, ...) / the node's engine
        paragraph  the node's paragraph (None for whole-report nodes and for jobs)
        node       the node's name ("" for a job)
        lane       a label to put on the y axis: "query · job", "query · p2", "query · -"
        job_id, trace_id
        start, end naive UTC datetimes; end of a job still running is `now` and status "running"
        ms         duration in milliseconds
        status     job: completed / failed / cancelled / interrupted / running; node: "ok"

Jobs come from `job.started` paired with the next `job.completed|failed|cancelled|interrupted`
of the same job (a retried job has one bar per attempt). Nodes come from `engine.node` events
(payload engine, node, paragraph, ms, t0 = epoch seconds at the node's start); an event
without a usable t0 is placed to end at the event's time, one without `ms` is skipped and
counted in `frame.attrs["skipped"]`. Note: event compaction (SHOAL_EVENTS_PER_RUN) may have
removed old node events of a very long run; job bars are never compacted.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import select

from core.infra.db import Database
from core.infra.models import Event, Job, from_epoch, utcnow
from core.work.states import JobState
from core.infra.events import flush_queued

TIMELINE_COLUMNS = ["kind", "engine", "paragraph", "node", "lane", "job_id", "trace_id", "start", "end", "ms",
                    "status"]
JOB_END = {"job.completed": JobState.COMPLETED, "job.failed": JobState.FAILED, "job.cancelled": JobState.CANCELLED,
           "job.interrupted": JobState.INTERRUPTED}
TYPES = ["job.started", "engine.node", *JOB_END]


def _empty(error: str = "", skipped: int = 0) -> pd.DataFrame:
    frame = pd.DataFrame(columns=TIMELINE_COLUMNS)
    frame.attrs["skipped"] = skipped
    if error:
        frame.attrs["error"] = error
    return frame


def _lane(engine: str, paragraph) -> str:
    return f"{engine} · {'-' if paragraph is None else f'p{paragraph}'}"


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def run_timeline(db: Database, run_id: str, *, now: datetime | None = None, limit: int = 20_000) -> pd.DataFrame:
    """The run's job and node bars, ordered by start. Never raises: an empty frame with
    attrs["error"] when the database cannot be read."""
    flush_queued(db)  # this process's queued events first: this reads the table directly
    now = now or utcnow()
    try:
        with db.session() as s:
            kinds = dict(s.execute(select(Job.id, Job.kind).where(Job.run_id == run_id)).all())
            events = s.execute(select(Event.ts, Event.type, Event.job_id, Event.trace_id, Event.payload)
                               .where(Event.run_id == run_id, Event.type.in_(TYPES))
                               .order_by(Event.id).limit(limit)).all()
    except Exception as exc:  # noqa: BLE001
        return _empty(f"the timeline cannot be read: {type(exc).__name__}")
    rows: list[dict] = []
    open_jobs: dict[str, dict] = {}
    skipped = 0
    for ts, type_, job_id, trace, payload in events:
        p = payload if isinstance(payload, dict) else {}
        if type_ == "engine.node":
            ms = _number(p.get("ms"))
            if ms is None or ms < 0:
                skipped += 1
                continue
            t0 = _number(p.get("t0"))
            try:
                start = from_epoch(t0) if t0 is not None else ts - timedelta(milliseconds=ms)
            except (OverflowError, OSError, ValueError):
                start = ts - timedelta(milliseconds=ms)
            engine = str(p.get("engine") or kinds.get(job_id) or "?")
            para = p.get("paragraph")
            para = int(para) if isinstance(para, (int, float)) and not isinstance(para, bool) else None
            rows.append({"kind": "node", "engine": engine, "paragraph": para, "node": str(p.get("node") or "?"),
                         "lane": _lane(engine, para), "job_id": job_id, "trace_id": trace, "start": start,
                         "end": start + timedelta(milliseconds=ms), "ms": ms, "status": "ok"})
        elif type_ == "job.started":
            if job_id in open_jobs:  # started again without an end event (taken over): close the old bar
                rows.append(_close(open_jobs.pop(job_id), ts, JobState.INTERRUPTED))
            engine = str(kinds.get(job_id) or p.get("kind") or "?")
            open_jobs[job_id] = {"kind": "job", "engine": engine, "paragraph": None, "node": "",
                                 "lane": f"{engine} · job", "job_id": job_id, "trace_id": trace, "start": ts}
        elif type_ in JOB_END and job_id in open_jobs:
            rows.append(_close(open_jobs.pop(job_id), ts, JOB_END[type_]))
    for bar in open_jobs.values():
        rows.append(_close(bar, max(now, bar["start"]), JobState.RUNNING))
    if not rows:
        return _empty(skipped=skipped)
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS).sort_values(["start", "kind"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    frame.attrs["skipped"] = skipped
    return frame


def _close(bar: dict, end: datetime, status: str) -> dict:
    return {**bar, "end": end, "ms": (end - bar["start"]).total_seconds() * 1000, "status": status}


def timeline_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per engine: node count, summed node time, first start, last end, wall time, and the
    largest number of its nodes that ran at once."""
    cols = ["engine", "nodes", "node_ms", "start", "end", "wall_ms", "max_parallel"]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for engine, g in frame.groupby("engine", sort=True):
        nodes = g[g["kind"] == "node"]
        start, end = g["start"].min(), g["end"].max()
        out.append({"engine": engine, "nodes": len(nodes), "node_ms": float(nodes["ms"].sum()),
                    "start": start, "end": end, "wall_ms": (end - start).total_seconds() * 1000,
                    "max_parallel": _max_overlap(nodes)})
    return pd.DataFrame(out, columns=cols)


def _max_overlap(nodes: pd.DataFrame) -> int:
    points = sorted([(s, 1) for s in nodes["start"]] + [(e, -1) for e in nodes["end"]])  # ends before starts on ties
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best
