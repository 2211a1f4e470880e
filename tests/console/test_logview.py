"""The log viewer (tail by offset, parse, filter, corrupted lines) and the one-trace view."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from loguru import logger
from sqlalchemy import insert

from core.console import logview
from core.infra.db import Database
from core.infra.logs import FORMAT
from core.console.logview import LogView, parse_line
from core.infra.models import Event, ForumMessage, Job, LlmCall, Report, Run, TelemetryEvent
from core.console.traces import trace_bundle


def line(level="INFO", trace="-", sink="app", msg="hello", time="2025-01-01 10:00:00.000",
         where="core.research.engine:_node:201"):
    return f"{time} | {level: <8} | {trace: <16} | {sink: <7} | {where} - {msg}\n"


def write(path: Path, text: str | bytes, mode="a") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode + "b") as fh:
        fh.write(text.encode("utf-8") if isinstance(text, str) else text)


def test_real_loguru_output_parses_and_a_traceback_belongs_to_its_record(tmp_path):
    path = tmp_path / "app.log"
    handler = logger.add(path, format=FORMAT, level="DEBUG", filter=lambda r: r["extra"].get("logview_test"))
    try:
        log = logger.bind(logview_test=True, trace_id="abcd1234abcd1234", sink="query")
        log.info("first | with a pipe and ünïcode 网友")
        try:
            raise ValueError("bad thing")
        except ValueError:
            log.exception("it failed")
        logger.bind(logview_test=True, trace_id="-", sink="app").warning("no trace")
    finally:
        logger.remove(handler)
    view = LogView(tmp_path)
    assert view.poll() > 3
    entries = view.entries()
    first, failed = entries[0], entries[1]
    assert first.parsed and first.level == "INFO" and first.trace == "abcd1234abcd1234" and first.sink == "query"
    assert first.message == "first | with a pipe and ünïcode 网友"
    assert "test_logview:" in first.location and first.time.startswith("20")
    assert failed.level == "ERROR" and failed.message == "it failed"
    tb = [e for e in entries if e.continuation]
    assert tb and all(e.trace == "abcd1234abcd1234" and e.level == "ERROR" and not e.parsed for e in tb)
    assert any("ValueError: bad thing" in e.message for e in tb)
    assert entries[-1].trace == "" and entries[-1].level == "WARNING"  # "-" means no trace
    assert len(view.entries(trace="abcd")) == len(entries) - 1


def test_corrupted_lines_are_kept_raw_and_never_raise(tmp_path):
    path = tmp_path / "app.log"
    write(path, b"\xff\xfe\x00garbage at the start\n")
    write(path, line(msg="ok one"))
    write(path, "2025-01-01 10:00:0 | trunc")  # a cut record ...
    write(path, "\n" + line(level="WARNING", msg="ok two"))
    write(path, b"|||| \x80\x81 |||\n")
    view = LogView(tmp_path)
    view.poll()
    entries = view.entries()
    assert [e.parsed for e in entries] == [False, True, False, True, False]
    assert entries[0].level is None and entries[0].trace is None and "garbage" in entries[0].raw
    assert entries[2].continuation and entries[2].level == "INFO"  # carries the record before it
    assert entries[4].level == "WARNING"
    assert parse_line("nonsense") is None and parse_line("") is None
    assert view.frame().shape[0] == 5


def test_filters_engine_level_trace_and_text(tmp_path):
    app = tmp_path / "app.log"
    write(app, line(level="DEBUG", sink="query", trace="t1", msg="debug q"))
    write(app, line(level="INFO", sink="query", trace="t1.a", msg="Info Q"))
    write(app, line(level="WARNING", sink="media", trace="t2", msg="warn m"))
    write(app, line(level="ERROR", sink="app", trace="t1.b", msg="error app"))
    write(app, line(level="CRITICAL", sink="media", trace="-", msg="crit m"))
    view = LogView(tmp_path, files=["app.log"])
    view.poll()
    msgs = lambda **f: [e.message for e in view.entries(**f)]  # noqa: E731
    assert msgs(engine="media") == ["warn m", "crit m"]
    assert msgs(min_level="WARNING") == ["warn m", "error app", "crit m"]
    assert msgs(min_level="error", engine="media") == ["crit m"]
    assert msgs(trace="t1") == ["debug q", "Info Q", "error app"]
    assert msgs(trace="t1.") == ["Info Q", "error app"]
    assert msgs(text="info q") == ["Info Q"]
    assert msgs(limit=2) == ["error app", "crit m"]  # the newest
    assert view.engines() == ["app", "media", "query"]


def test_tails_by_offset_holds_partial_lines_and_stays_bounded(tmp_path):
    app = tmp_path / "app.log"
    write(app, "".join(line(msg=f"old {i}") for i in range(1000)))
    view = LogView(tmp_path, files=["app.log"], max_entries=50, initial_bytes=2000)
    view.poll()
    first = view.entries(limit=10_000)
    assert 0 < len(first) < 30 and first[-1].message == "old 999"  # only the last 2000 bytes
    assert all(e.parsed for e in first)  # the cut first line was skipped, not shown broken
    assert view.poll() == 0
    write(app, line(msg="new 1") + line(msg="new 2")[:40])  # a writer mid-append
    assert view.poll() == 1 and view.entries()[-1].message == "new 1"
    write(app, line(msg="new 2")[40:])
    assert view.poll() == 1 and view.entries()[-1].message == "new 2"
    write(app, "".join(line(msg=f"more {i}") for i in range(200)))
    view.poll()
    assert view.buffered()["app.log"] == 50 and view.entries()[-1].message == "more 199"


def test_engine_filter_reads_the_engines_own_file(tmp_path):
    write(tmp_path / "app.log", line(sink="query", msg="q1") + line(sink="media", msg="m1"))
    write(tmp_path / "query.log", line(sink="query", msg="q0 older") + line(sink="query", msg="q1"))
    view = LogView(tmp_path)
    view.poll()
    assert [e.message for e in view.entries(engine="query")] == ["q0 older", "q1"]
    assert [e.message for e in view.entries()] == ["q1", "m1"]
    assert view.available() == ["app.log", "query.log"]


def test_a_line_without_newline_is_cut_not_buffered_forever(tmp_path, monkeypatch):
    monkeypatch.setattr(logview, "MAX_PENDING", 1000)
    write(tmp_path / "app.log", "x" * 5000)
    view = LogView(tmp_path, files=["app.log"])
    assert view.poll() == 1
    e = view.entries()[0]
    assert not e.parsed and len(e.raw) <= logview.MAX_LINE_CHARS


def test_missing_log_folder(tmp_path):
    view = LogView(tmp_path / "nope")
    assert view.poll() == 0 and view.entries() == [] and view.frame().empty and view.available() == []


# --- one trace on one screen ----------------------------------------------------------------------

RUN_T, JOB_T, NODE_T = "aaaa1111aaaa1111", "aaaa1111aaaa1111.0a0b0c", "aaaa1111aaaa1111.0a0b0c.1d2e3f"


def _seed_trace(db, log_dir: Path):
    now = datetime(2025, 1, 1, 10)
    with db.session() as s:
        s.add(Run(id="r1", trace_id=RUN_T))
        s.add(Run(id="r2", trace_id="bbbb2222bbbb2222"))
        s.flush()
        s.add(Job(id="r1-query", run_id="r1", kind="query", trace_id=JOB_T))
        s.add(Job(id="r2-query", run_id="r2", kind="query", trace_id="bbbb2222bbbb2222.000001"))
        s.execute(insert(Event), [
            {"ts": now, "type": "run.started", "run_id": "r1", "source": "s", "trace_id": RUN_T, "payload": {}},
            {"ts": now, "type": "engine.node", "run_id": "r1", "job_id": "r1-query", "source": "query",
             "trace_id": NODE_T, "payload": {"ms": 1}},
            {"ts": now, "type": "run.started", "run_id": "r2", "source": "s", "trace_id": "bbbb2222bbbb2222",
             "payload": {}}])
        s.execute(insert(LlmCall), [{"ts": now, "role": "QUERY", "model": "m", "trace_id": NODE_T},
                                    {"ts": now, "role": "QUERY", "model": "m", "trace_id": "bbbb2222bbbb2222"}])
        s.execute(insert(TelemetryEvent), [{"event_id": "e1", "type": "page.view", "ts": now, "trace_id": JOB_T,
                                            "payload": {}}])
        s.add(ForumMessage(run_id="r1", type="agent", sender="Query Engine", source="QUERY", content="hi",
                           trace_id=JOB_T))
        s.add(Report(id="rep1", run_id="r1", trace_id=RUN_T))
    write(log_dir / "app.log", line(trace=RUN_T, msg="run started")
          + line(trace="bbbb2222bbbb2222", msg="other run")
          + line(level="ERROR", trace=JOB_T, sink="query", msg="job failed")
          + "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n"
          + line(trace="bbbb2222bbbb2222", msg="other again")
          + "\xff corrupted line mentioning " + NODE_T + "\n"
          + line(trace="-", msg=f"supervisor resumed run with trace {RUN_T}"))
    write(log_dir / "query.log", line(level="ERROR", trace=JOB_T, sink="query", msg="job failed")
          + line(trace=NODE_T, sink="query", msg="node done"))
    write(log_dir / "forum.log", "[10:00:00] [QUERY] hi\n")


def test_trace_bundle_gathers_a_runs_children_from_every_table_and_log(db, tmp_path):
    _seed_trace(db, tmp_path / "logs")
    b = trace_bundle(db, RUN_T, tmp_path / "logs")
    assert b["problems"] == []
    assert b["counts"] == {"runs": 1, "jobs": 1, "events": 2, "llm_calls": 1, "telemetry": 1, "forum": 1,
                           "reports": 1, "logs": 8}
    logs = b["logs"]
    assert list(logs["message"]).count("job failed") == 1  # in app.log and query.log: shown once
    assert "node done" in set(logs["message"]) and "ValueError: boom" in set(logs["message"])
    assert any("corrupted line" in m for m in logs["message"])
    assert not any("other" in m for m in logs["message"])
    assert b["truncated"] == {name: False for name in ("runs", "jobs", "events", "llm_calls", "telemetry", "forum",
                                                       "reports", "logs")}

    job = trace_bundle(db, JOB_T, tmp_path / "logs")
    assert job["counts"]["runs"] == 0 and job["counts"]["jobs"] == 1 and job["counts"]["events"] == 1
    assert set(job["logs"]["message"]) >= {"job failed", "node done"} and "run started" not in set(job["logs"]["message"])

    bounded = trace_bundle(db, RUN_T, tmp_path / "logs", limit=1, max_log_bytes=200)
    assert bounded["truncated"]["events"] and len(bounded["events"]) == 1 and bounded["truncated"]["logs"]


def test_trace_bundle_with_bad_input_says_what_is_missing(db, tmp_path):
    short = trace_bundle(db, "ab", tmp_path)
    assert "at least 4" in short["problems"][0].render("en") and short["events"].empty and short["logs"].empty
    nothing = trace_bundle(db, "ffff0000", tmp_path / "no-logs")
    assert all(n == 0 for n in nothing["counts"].values()) and "does not exist" in nothing["problems"][0].render("en")
    down = trace_bundle(Database("sqlite://", None, "down"), "ffff0000", None)
    assert len(down["problems"]) == 8 and down["runs"].empty  # 7 tables + no log folder
    assert [p.render("en") for p in down["problems"]][-1] == "no log folder given"
    assert "事件" in " ".join(p.render("zh") for p in down["problems"])  # read in the reader's language
