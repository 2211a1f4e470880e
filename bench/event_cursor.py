"""`EventLog.since(cursor)` at the end of a long history: flat in history size, vs a naive full read.

Two SQLite files (the shipped schema, WAL, the app's pragmas) are filled by bulk insert
(SQLAlchemy core executemany) with a history of `--small` and `--large` events of one run (the
worst case for the naive reader: no compaction). Then, alternating between the two files call by
call, a page's poll is timed:

  since(cursor)                  unfiltered (the Monitor's global feed)
  since(cursor, run_id=run)      one run's feed (an engine page, the CLI)

with the cursor at the end (0 new events) and 100 events before the end (100 new). The naive
baseline is what a page without cursors does: SELECT every event of the run, keep those with
id > cursor in Python.

    python bench/event_cursor.py [--small 10000] [--large 1000000] [--write]
"""
from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Machine, command_md, isolate, median, parser, table, write_section  # noqa: E402

RUN = "a1b2c3d4e5f6"
TYPES = ("engine.node", "job.heartbeat", "forum.message", "engine.node", "llm.call", "engine.node")


def fill(db, n: int, batch: int = 20_000) -> float:
    from sqlalchemy import insert

    from core.infra.models import Event

    base = datetime(2026, 1, 1)
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        for start in range(0, n, batch):
            rows = [{"ts": base + timedelta(milliseconds=i), "run_id": RUN, "job_id": f"{RUN}-query",
                     "source": "engine", "type": TYPES[i % len(TYPES)], "trace_id": "9c0d2e4f1a2b3c4d",
                     "payload": {"engine": "query", "node": "FirstSummaryNode", "paragraph": i % 5, "ms": 12.5}}
                    for i in range(start, min(n, start + batch))]
            conn.execute(insert(Event), rows)
    return time.perf_counter() - t0


def naive_since(db, cursor: int, run_id: str):
    """What a page without a cursor does: read the run's whole history, filter in Python."""
    from sqlalchemy import select

    from core.infra.models import Event

    cols = (Event.id, Event.ts, Event.run_id, Event.job_id, Event.source, Event.type, Event.trace_id, Event.payload)
    with db.session() as s:
        rows = s.execute(select(*cols).where(Event.run_id == run_id).order_by(Event.id)).all()
    new = [r for r in rows if r.id > cursor]
    return new[:500]


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=400, help="timed since() calls per case and size")
    ap.add_argument("--naive-calls", type=int, default=5, help="timed naive reads, small history")
    ap.add_argument("--naive-calls-large", type=int, default=1,
                    help="timed naive reads, large history (15-30 s each at 1M events)")
    args = ap.parse_args()
    tmp = isolate("events")
    machine = Machine()

    from core.infra.db import open_database
    from core.infra.events import EventLog

    sizes = {"small": args.small, "large": args.large}
    logs: dict[str, EventLog] = {}
    last: dict[str, int] = {}
    for key, n in sizes.items():
        db = open_database(f"sqlite:///{tmp / 'data' / f'events-{key}.db'}")
        assert db.ok, db.error
        seconds = fill(db, n)
        size_mb = (tmp / "data" / f"events-{key}.db").stat().st_size / 2**20
        logs[key] = EventLog(db)
        last[key] = logs[key].latest_id()
        print(f"history {n:>9,} events: bulk insert {seconds:6.1f} s ({n / seconds:,.0f} rows/s), "
              f"file {size_mb:.0f} MB + WAL", flush=True)

    cases = [("since(cursor)", None, 0), ("since(cursor)", None, 100),
             ("since(cursor, run_id=…)", RUN, 0), ("since(cursor, run_id=…)", RUN, 100)]
    timings: dict[tuple, list[float]] = {}
    for name, run_id, new in cases:
        for key in sizes:  # warm the page cache and the statement cache
            for _ in range(20):
                got, cur = logs[key].since(last[key] - new, run_id=run_id)
            assert len(got) == new and cur == (last[key] if new else last[key] - new), (name, key, len(got))
        for key in sizes:
            timings[(name, new, key)] = []
        for _ in range(args.calls):  # alternate small and large call by call
            for key in sizes:
                t0 = time.perf_counter_ns()
                logs[key].since(last[key] - new, run_id=run_id)
                timings[(name, new, key)].append((time.perf_counter_ns() - t0) / 1000)
    # The naive read costs the same whatever the cursor (it reads the whole run): measured once,
    # with 100 new events, so the large history's seconds-long read is not repeated needlessly.
    naive: dict[str, list[float]] = {key: [] for key in sizes}
    for i in range(max(args.naive_calls, args.naive_calls_large)):
        for key in sizes:
            if i >= (args.naive_calls if key == "small" else args.naive_calls_large):
                continue
            t0 = time.perf_counter_ns()
            got = naive_since(logs[key].db, last[key] - 100, RUN)
            naive[key].append((time.perf_counter_ns() - t0) / 1000)
            assert len(got) == 100
    machine.end()

    small, large = f"{args.small:,}", f"{args.large:,}"
    rows = []
    for name, run_id, new in cases:
        a, b = median(timings[(name, new, "small")]), median(timings[(name, new, "large")])
        rows.append([f"`{name}`", new, f"{a:,.0f}", f"{b:,.0f}", f"**{b / a:.2f}**"])
    a, b = median(naive["small"]), median(naive["large"])
    rows.append(["naive: SELECT the run's events, filter in Python", "any (100)", f"{a:,.0f}", f"{b:,.0f}",
                 f"**{b / a:.0f}**"])
    headers = ["read", "new events", f"µs/call, history {small}", f"µs/call, history {large}",
               f"ratio {large} / {small}"]
    print()
    print(table(headers, rows))
    flat = [median(timings[(n, k, "large")]) / median(timings[(n, k, "small")]) for n, _, k in cases]
    naive_ratio = median(naive["large"]) / median(naive["small"])
    naive_vs = median(naive["large"]) / median(timings[("since(cursor, run_id=…)", 0, "large")])
    lo, hi = f"{min(flat):.2f}", f"{max(flat):.2f}"
    spread = f"ratio {lo} in every case" if lo == hi else f"ratios {lo}–{hi}"
    summary = (f"`since(cursor)` costs the same at {large} events as at {small} ({spread}); "
               f"the naive read grows with the history "
               f"({naive_ratio:.0f}× from {small} to {large}) and at {large} events is "
               f"{naive_vs:,.0f}× slower than the cursor for one poll with nothing new.")
    print(summary)
    if args.write:
        body = f"""## 2. Event cursor: `EventLog.since(cursor)` vs history size

**What**: the cost of one poll, `EventLog.since(cursor)` (core/infra/events.py), at the end of a history
of {small} and of {large} events on SQLite (the app's engine and pragmas, WAL), filled by
bulk insert (SQLAlchemy core executemany) with events of one run (the worst case for a reader
without cursors: no compaction). Calls alternate between the two databases one by one,
{args.calls} per case and size; the median is reported. "New events" is how far the cursor is
behind the newest event (0: nothing new, the usual poll). Baseline: a naive poll that selects the
run's events and filters `id > cursor` in Python; it costs the same whatever the cursor, so it is
timed with 100 new events only ({args.naive_calls} calls on the small history, {args.naive_calls_large}
on the large one, where one call takes many seconds).

**Command**: {command_md()}

{machine.markdown()}
{table(headers, rows)}
{summary} The cursor read is a range scan on the primary key (or on the
`(run_id, id)` index): it costs O(new events), whatever the history.
"""
        write_section("event_cursor", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
