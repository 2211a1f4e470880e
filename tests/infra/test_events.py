"""The event log: increasing ids, reads by cursor that cost O(new events), gaps, compaction."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event as sa_event, insert, text

from core.infra.events import EventLog
from core.infra.feeds import EventFeed
from core.infra.models import Event, utcnow
from core.infra.tracing import trace_scope


def _bulk(db, n, run_id="r1", type_="node.output"):
    now = utcnow()
    with db.session() as s:
        s.execute(insert(Event), [{"ts": now, "run_id": run_id, "source": "test", "type": type_, "trace_id": "",
                                   "payload": {"i": i}} for i in range(n)])


def test_ids_increase_and_since_returns_only_new(events):
    first = [events.emit("a", payload={"n": i}) for i in range(5)]
    assert first == sorted(first) and len(set(first)) == 5
    batch, cursor = events.since(0)
    assert [e.id for e in batch] == first and cursor == first[-1]
    assert events.since(cursor) == ([], cursor)
    newer = events.emit("b")
    batch, cursor2 = events.since(cursor)
    assert [e.id for e in batch] == [newer] and cursor2 == newer


def test_since_filters_by_run_and_type_and_respects_limit(events):
    for i in range(6):
        events.emit("x" if i % 2 else "y", run_id="r1" if i < 4 else "r2")
    by_run, _ = events.since(0, run_id="r2")
    assert {e.run_id for e in by_run} == {"r2"} and len(by_run) == 2
    by_type, _ = events.since(0, types=["x"])
    assert {e.type for e in by_type} == {"x"} and len(by_type) == 3
    limited, cur = events.since(0, limit=4)
    assert len(limited) == 4 and cur == limited[-1].id


def test_payload_is_redacted_and_trace_id_is_taken_from_context(events):
    with trace_scope("trace-xyz"):
        events.emit("llm.call", payload={"api_key": "sk-abcdefgh12345678", "note": "Bearer abcdefghijklmnop"})
    (e,), _ = events.since(0)
    assert e.trace_id == "trace-xyz"
    assert "sk-abcdefgh12345678" not in str(e.payload) and "abcdefghijklmnop" not in str(e.payload)


def test_reading_new_events_is_a_range_scan_not_a_history_scan(db, events):
    """O(new events): the query seeks on the primary key after the cursor, with a limit."""
    _bulk(db, 3000)
    latest = events.latest_id()
    statements = []

    def capture(conn, cursor, statement, params, context, executemany):
        statements.append((statement, params))

    sa_event.listen(db.engine, "before_cursor_execute", capture)
    try:
        batch, cursor = events.since(latest)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", capture)
    assert batch == [] and cursor == latest
    (sql, params), = [s for s in statements if "FROM events" in s[0]]
    assert "events.id >" in sql and "LIMIT" in sql.upper()
    with db.engine.connect() as conn:
        if db.backend == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", tuple(params)))
            assert "SCAN events" not in plan and "PRIMARY KEY" in plan, plan
        else:
            row = conn.execute(text("EXPLAIN SELECT * FROM events WHERE id > :c ORDER BY id LIMIT 500"),
                               {"c": latest}).mappings().one()
            assert row["type"] == "range" and row["key"] == "PRIMARY", dict(row)


def test_a_young_gap_holds_the_cursor_and_an_old_gap_is_stepped_over(db, events):
    a = events.emit("a")
    # An id handed out but not yet committed looks like a gap: simulate it by leaving id a+1 unused.
    with db.session() as s:
        s.add(Event(id=a + 2, type="late", ts=utcnow(), source="t", trace_id="", payload={}))
    batch, cursor = events.since(a)
    assert batch == [] and cursor == a, "a reader must not step past a gap that may still be filled"
    with db.session() as s:
        s.add(Event(id=a + 1, type="filled", ts=utcnow(), source="t", trace_id="", payload={}))
    batch, cursor = events.since(a)
    assert [e.type for e in batch] == ["filled", "late"] and cursor == a + 2
    # A gap whose next row is older than the grace period (a rolled-back insert) is skipped.
    with db.session() as s:
        s.add(Event(id=a + 5, type="after-old-gap", ts=utcnow() - timedelta(seconds=10), source="t", trace_id="",
                    payload={}))
    batch, cursor = events.since(a + 2)
    assert [e.type for e in batch] == ["after-old-gap"] and cursor == a + 5


def test_compaction_bounds_history_per_run_and_keeps_state_changes(db, events):
    events.emit("run.started", run_id="r1")
    events.emit("job.started", run_id="r1")
    _bulk(db, 250, run_id="r1")
    _bulk(db, 30, run_id="r2")
    dropped = events.compact("r1", keep=100)
    assert dropped == 150  # 252 events: the newest 100 kept, and the two older state changes too
    kept, _ = events.since(0, run_id="r1", limit=10_000)
    types = [e.type for e in kept]
    assert len(kept) == 102 and "run.started" in types and "job.started" in types
    assert [e.payload["i"] for e in kept if e.type == "node.output"] == list(range(150, 250))
    assert len(events.since(0, run_id="r2", limit=10_000)[0]) == 30
    assert events.compact("r2", keep=100) == 0


def test_event_feed_keeps_a_bounded_buffer_and_reads_only_after_its_cursor(db, events):
    _bulk(db, 500)
    feed = EventFeed(maxlen=50)
    feed.start_at_latest(events, backlog=10)
    assert len(feed.buffer) == 10 and feed.cursor == events.latest_id()
    assert feed.poll(events) == []
    new_ids = [events.emit("n", payload={"k": i}) for i in range(80)]
    got = feed.poll(events)
    assert [e.id for e in got] == new_ids
    assert len(feed.buffer) == 50 and feed.buffer[-1].id == new_ids[-1]


def test_event_log_on_an_unreachable_database_raises_a_clear_error():
    from core.infra.db import DatabaseUnavailable, open_database

    bad = open_database("mysql+pymysql://u:pw@127.0.0.1:1/db")
    log = EventLog(bad)
    try:
        log.emit("x")
    except DatabaseUnavailable as exc:
        assert "pw" not in str(exc) and "unreachable" in str(exc)
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("emit on a dead database must raise DatabaseUnavailable")
