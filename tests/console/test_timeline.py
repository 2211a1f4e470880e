"""The run timeline: job bars from job events, node bars from engine.node events (t0 + ms)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import insert

from core.infra.db import Database
from core.infra.models import Event, Job, Run
from core.console.timeline import TIMELINE_COLUMNS, run_timeline, timeline_summary

T0 = datetime(2025, 1, 1, 12, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def epoch(seconds: float) -> float:
    return at(seconds).replace(tzinfo=timezone.utc).timestamp()


def ev(type_, seconds, job_id=None, payload=None, run_id="r1"):
    return {"ts": at(seconds), "type": type_, "run_id": run_id, "job_id": job_id, "source": "test",
            "trace_id": f"tr.{job_id or ''}", "payload": payload or {}}


def node(engine, name, paragraph, start, ms, job_id):
    return ev("engine.node", start + ms / 1000, job_id,
              {"engine": engine, "node": name, "paragraph": paragraph, "ms": ms, "t0": epoch(start)})


def _seed(db):
    with db.session() as s:
        s.add(Run(id="r1", trace_id="tr"))
        s.flush()
        for kind in ("query", "media", "report"):
            s.add(Job(id=f"r1-{kind}", run_id="r1", kind=kind, name=kind, trace_id=f"tr.r1-{kind}"))
        s.flush()
        s.execute(insert(Event), [
            ev("job.started", 0, "r1-query", {"kind": "query"}),
            ev("job.started", 0.5, "r1-media", {"kind": "media"}),
            node("query", "first_search", 0, 1.0, 2000.0, "r1-query"),
            node("media", "first_search", 0, 1.5, 1000.0, "r1-media"),
            node("query", "first_summary", 0, 3.0, 1500.0, "r1-query"),
            ev("engine.node", 4.0, "r1-media", {"engine": "media", "node": "reflect", "paragraph": 1, "ms": 500}),
            ev("engine.node", 4.0, "r1-media", {"engine": "media", "node": "broken", "t0": "soon"}),  # no ms: skipped
            ev("job.failed", 4.0, "r1-media", {"error": "boom"}),
            node("query", "format_report", None, 5.0, 250.0, "r1-query"),
            ev("job.completed", 10.0, "r1-query"),
            ev("job.started", 11.0, "r1-report", {"kind": "report"}),
            ev("run.started", 0, None),
            ev("job.started", 0, "other-job", run_id="r2"),
        ])


def test_jobs_and_nodes_become_bars_a_gantt_chart_can_draw(db):
    _seed(db)
    frame = run_timeline(db, "r1", now=at(20))
    assert list(frame.columns) == TIMELINE_COLUMNS
    assert str(frame["start"].dtype).startswith("datetime64") and str(frame["end"].dtype).startswith("datetime64")
    jobs = frame[frame.kind == "job"].set_index("engine")
    assert jobs.loc["query", "start"] == at(0) and jobs.loc["query", "end"] == at(10)
    assert jobs.loc["query", "ms"] == 10_000 and jobs.loc["query", "status"] == "completed"
    assert jobs.loc["media", "status"] == "failed" and jobs.loc["media", "ms"] == 3500
    assert jobs.loc["report", "status"] == "running" and jobs.loc["report", "end"] == at(20)
    assert jobs.loc["report", "lane"] == "report · job"

    nodes = frame[frame.kind == "node"]
    assert len(nodes) == 5 and frame.attrs["skipped"] == 1
    first = nodes[(nodes.engine == "query") & (nodes.node == "first_search")].iloc[0]
    assert first["start"] == at(1) and first["end"] == at(3) and first["ms"] == 2000 and first["lane"] == "query · p0"
    no_t0 = nodes[nodes.node == "reflect"].iloc[0]  # placed to end at its event's time
    assert no_t0["start"] == at(3.5) and no_t0["end"] == at(4) and no_t0["paragraph"] == 1
    whole = nodes[nodes.node == "format_report"].iloc[0]
    assert pd.isna(whole["paragraph"]) and whole["lane"] == "query · -"
    assert list(frame["start"]) == sorted(frame["start"])
    assert set(frame["trace_id"]) >= {"tr.r1-query", "tr.r1-media"}

    summary = timeline_summary(frame).set_index("engine")
    assert summary.loc["query", "nodes"] == 3 and summary.loc["query", "node_ms"] == 3750
    assert summary.loc["query", "wall_ms"] == 10_000 and summary.loc["query", "max_parallel"] == 1
    assert summary.loc["media", "nodes"] == 2


def test_overlapping_nodes_count_as_parallel():
    frame = pd.DataFrame([
        {"kind": "node", "engine": "e", "start": at(0), "end": at(2), "ms": 2000.0},
        {"kind": "node", "engine": "e", "start": at(1), "end": at(3), "ms": 2000.0},
        {"kind": "node", "engine": "e", "start": at(3), "end": at(4), "ms": 1000.0},  # starts as one ends
    ])
    assert timeline_summary(frame).iloc[0]["max_parallel"] == 2


def test_a_run_without_events_and_a_database_that_is_down(db):
    empty = run_timeline(db, "nothing")
    assert empty.empty and list(empty.columns) == TIMELINE_COLUMNS and timeline_summary(empty).empty
    down = run_timeline(Database("sqlite://", None, "down"), "r1")
    assert down.empty and "cannot be read" in down.attrs["error"]
