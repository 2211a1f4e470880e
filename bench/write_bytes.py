"""Database writes of one offline analysis: checkpoint bytes per engine and event transactions.

In a temporary folder (its own SQLite file): the demo corpus, then one offline analysis (three
engines, P=5, R=2, forum, host, report) in this process, with a SQLAlchemy cursor hook counting
what goes to the database:

  - checkpoint bytes: the `checkpoint` parameter of every `UPDATE jobs` (per engine job: how many
    writes, how many bytes), plus every `INSERT INTO job_items` (sources stored once each);
  - event writes: `INSERT INTO events` statements, the rows they carry, and commits overall.

`--core-from PATH` imports `core` from another checkout (e.g. `git archive <commit> | tar -x -C
PATH`) to measure the code before a change with the same script: a real "before", not emulated.
`--compare PATH` first runs this script on PATH in a subprocess and reports both side by side.

    python bench/write_bytes.py [--posts 3000] [--core-from PATH | --compare PATH] [--write]
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Machine, clean_env, command_md, isolate, parser, table, write_section  # noqa: E402

TOPIC = "新能源汽车价格战"
P, R = 5, 2
ENGINES = ("query", "media", "insight")


def _bytes(params) -> int:
    if isinstance(params, dict):
        params = list(params.values())
    return sum(len(p.encode()) if isinstance(p, str) else len(p) if isinstance(p, bytes) else 8
               for p in params or ())


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=3000)
    ap.add_argument("--core-from", type=Path, default=None, help="import core from this checkout instead")
    ap.add_argument("--compare", type=Path, default=None, help="also measure this checkout (before) first")
    args = ap.parse_args()
    before = None
    if args.compare:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--posts", str(args.posts),
                               "--core-from", str(args.compare.resolve())], capture_output=True, text=True,
                              check=True, timeout=1800)
        before = json.loads(proc.stdout.strip().splitlines()[-1])
    tree = (args.core_from or ROOT).resolve()
    tmp = isolate("writes")
    if args.core_from:
        sys.path.insert(0, str(tree))
    machine = Machine()
    env = {**clean_env(tmp), "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-m", "core", "data", "demo", "--posts", str(args.posts)], cwd=tree, env=env,
                   check=True, capture_output=True)

    from sqlalchemy import event as sa_event

    import core
    from core.analysis import start_analysis
    from core.infra.config import load_settings
    from core.runtime import build_runtime
    from core.work.runs import jobs_of

    assert Path(core.__file__).resolve().is_relative_to(tree), core.__file__
    settings = load_settings()
    settings.values["SHOAL_MODE"] = "offline"
    rt = build_runtime(settings=settings, console_log=False)
    assert rt.ok, rt.problems
    cp_writes: Counter = Counter()
    cp_bytes: Counter = Counter()
    stats = Counter()
    job_of_param: dict = {}

    def on_execute(conn, cursor, statement, params, context, executemany):
        sql = statement.lstrip().upper()
        if sql.startswith("UPDATE JOBS") and "CHECKPOINT" in sql:
            plist = list(params.values()) if isinstance(params, dict) else list(params)
            job_id = next((p for p in reversed(plist) if isinstance(p, str) and "-" in p and len(p) <= 32), "?")
            cp = max((p for p in plist if isinstance(p, str) and p.startswith("{")), key=len, default="")
            kind = job_id.rsplit("-", 1)[-1]
            cp_writes[kind] += 1
            cp_bytes[kind] += len(cp.encode())
        elif sql.startswith("INSERT INTO JOB_ITEMS"):
            rows = params if executemany else [params]
            stats["job_items_rows"] += len(rows)
            stats["job_items_bytes"] += sum(_bytes(r) for r in rows)
        elif sql.startswith("INSERT INTO EVENTS"):
            stats["event_statements"] += 1

    def on_commit(conn):
        stats["commits"] += 1

    sa_event.listen(rt.db.engine, "before_cursor_execute", on_execute)
    sa_event.listen(rt.db.engine, "commit", on_commit)
    try:
        t0 = time.monotonic()
        run_id = start_analysis(rt.supervisor, settings, TOPIC, paragraphs=P, reflections=R, offline=True)
        status = rt.supervisor.wait_run(run_id, 900)
        wall = time.monotonic() - t0
        if status != "completed":
            raise SystemExit(f"run {run_id} ended {status}")
        getattr(rt.events, "flush", lambda *a: True)()
        jobs = {j.kind: j for j in jobs_of(rt.db, run_id)}
        from sqlalchemy import func, select
        from core.infra.models import Event
        with rt.db.session() as s:
            stats["event_rows"] = s.scalar(select(func.count()).select_from(Event).where(Event.run_id == run_id))
            by_type = dict(s.execute(select(Event.type, func.count()).where(Event.run_id == run_id)
                                     .group_by(Event.type)).all())
        log_stats = rt.events.stats().as_dict() if hasattr(rt.events, "stats") else {}
        n_sources = {k: (jobs[k].result or {}).get("n_sources") for k in ENGINES}
    finally:
        sa_event.remove(rt.db.engine, "before_cursor_execute", on_execute)
        sa_event.remove(rt.db.engine, "commit", on_commit)
        rt.close()
    machine.end()
    rows = [[k, cp_writes[k], f"{cp_bytes[k] / 1024:,.1f}", f"{cp_bytes[k] / max(1, cp_writes[k]) / 1024:,.1f}",
             n_sources[k]] for k in ENGINES]
    per_engine_kb = sum(cp_bytes[k] for k in ENGINES) / 1024 / len(ENGINES)
    items_kb = stats["job_items_bytes"] / 1024
    total_kb = (sum(cp_bytes[k] for k in ENGINES) + stats["job_items_bytes"]) / 1024
    out = {"bench": "write_bytes", "core": str(tree), "wall_s": round(wall, 2),
           "checkpoint_writes": {k: cp_writes[k] for k in ENGINES},
           "checkpoint_kb": {k: round(cp_bytes[k] / 1024, 1) for k in ENGINES},
           "job_items_rows": stats["job_items_rows"], "job_items_kb": round(items_kb, 1),
           "engines_total_kb": round(total_kb, 1), "per_engine_kb": round(total_kb / len(ENGINES), 1),
           "events_of_run": stats["event_rows"], "event_insert_statements": stats["event_statements"],
           "commits": stats["commits"], "event_types": by_type, "event_log": log_stats}
    print(table(["engine", "checkpoint writes", "checkpoint KB written", "KB per write", "sources"], rows))
    print(f"job_items: {stats['job_items_rows']} rows, {items_kb:,.1f} KB; "
          f"events: {stats['event_rows']} rows of the run in {stats['event_statements']} INSERT statements; {stats['commits']} commits in all; "
          f"run wall {wall:.1f} s")
    compare = ""
    if before is not None:
        out["before"] = {k: before[k] for k in ("core", "per_engine_kb", "engines_total_kb", "checkpoint_kb",
                                                 "event_insert_statements", "commits", "wall_s")}
        crow = lambda what, key, fmt: [what, fmt(before[key]), fmt(out[key])]  # noqa: E731
        compare = table(["per offline analysis", "before (`--compare` tree)", "this tree"], [
            crow("checkpoint bytes per engine job (checkpoints + stored sources), KB", "per_engine_kb", str),
            crow("the same, three engines, KB", "engines_total_kb", str),
            crow("`INSERT INTO events` statements", "event_insert_statements", str),
            crow("commits (reads included)", "commits", str),
            crow("run wall, s (one run, noisy)", "wall_s", str)])
        print(compare)
        print(f"checkpoint bytes per engine: {before['per_engine_kb']} KB before, {out['per_engine_kb']} KB now "
              f"({before['per_engine_kb'] / max(out['per_engine_kb'], 0.1):.1f}x less)")
    print(json.dumps(out, ensure_ascii=False))
    if args.write:
        body = f"""## Writes of one offline analysis

**What**: one offline analysis (three engines, P={P}, R={R}, forum, host, report) on the
{args.posts:,}-post demo corpus, in this process on SQLite, counting with a SQLAlchemy cursor hook
the checkpoint bytes sent per engine job (`UPDATE jobs … checkpoint`, plus sources stored once in
`job_items`), the `INSERT INTO events` statements and the commits.

**Command**: {command_md()}{f"; the before tree was `{args.compare}` (the branch point)" if args.compare else ""}

{machine.markdown()}
{compare}
This tree, per engine job:

{table(["engine", "checkpoint writes", "checkpoint KB written", "KB per write", "sources"], rows)}
Sources stored once: {stats['job_items_rows']} rows, {items_kb:,.1f} KB. Checkpoint bytes per engine
(checkpoints + its sources): {total_kb / len(ENGINES):,.1f} KB ({per_engine_kb:,.1f} KB of checkpoints).
Events of the run: {stats['event_rows']}, in {stats['event_statements']} INSERT statements; commits in all: {stats['commits']}; run wall {wall:.1f} s.
"""
        write_section("write_bytes", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
