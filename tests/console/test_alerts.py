"""Alert rules fire and clear exactly at their thresholds and durations (injected time)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import insert

from core.console.alerts import (
    DEFAULT_RULES,
    AlertEngine,
    AlertRule,
    collect_metrics,
    load_rules,
    rules_from_data,
    rules_to_json,
    save_rules,
)
from core.infra.events import EventLog
from core.infra.models import Job, LlmCall, Run

CPU = AlertRule("cpu_high", "cpu_percent", ">", 85, 300, "warning")


def test_defaults_follow_the_design():
    rules = {r.name: r for r in DEFAULT_RULES}
    assert (rules["cpu_high"].metric, rules["cpu_high"].op, rules["cpu_high"].threshold,
            rules["cpu_high"].for_seconds) == ("cpu_percent", ">", 85, 300)
    assert (rules["memory_high"].metric, rules["memory_high"].threshold) == ("memory_percent", 90)
    assert (rules["llm_error_rate_high"].metric, rules["llm_error_rate_high"].threshold) == ("llm_error_rate_pct", 5)
    assert rules["llm_p95_latency_high"].metric == "llm_p95_latency_ms"
    assert (rules["job_stalled"].metric, rules["job_stalled"].op, rules["job_stalled"].threshold) == \
        ("stalled_jobs", ">", 0)


def test_fires_only_after_holding_for_the_duration_and_clears_at_the_threshold():
    engine = AlertEngine([CPU])
    assert engine.evaluate(1000, {"cpu_percent": 86}) == []
    assert engine.pending() == {"cpu_high": 1000}
    assert engine.evaluate(1299.999, {"cpu_percent": 99}) == []
    (fired,) = engine.evaluate(1300, {"cpu_percent": 90})  # exactly 300 s after it started holding
    assert fired.state == "firing" and fired.since == 1000 and fired.at == 1300 and fired.value == 90
    assert engine.evaluate(1400, {"cpu_percent": 90}) == []  # fires once
    assert [a.rule for a in engine.firing()] == ["cpu_high"]
    (cleared,) = engine.evaluate(1500, {"cpu_percent": 85})  # 85 is not > 85
    assert cleared.state == "cleared" and cleared.since == 1300
    assert engine.firing() == [] and engine.pending() == {}
    assert [c.state for c in engine.history()] == ["firing", "cleared"]


def test_an_interruption_restarts_the_duration():
    engine = AlertEngine([CPU])
    engine.evaluate(0, {"cpu_percent": 95})
    engine.evaluate(200, {"cpu_percent": 50})
    engine.evaluate(250, {"cpu_percent": 95})
    assert engine.evaluate(549, {"cpu_percent": 95}) == []
    assert [c.state for c in engine.evaluate(550, {"cpu_percent": 95})] == ["firing"]


def test_operators_at_the_exact_threshold_and_missing_data():
    ge = AlertRule("ge", "m", ">=", 5, 0)
    lt = AlertRule("lt", "m", "<", 5, 0)
    engine = AlertEngine([ge, lt])
    assert [(c.rule, c.state) for c in engine.evaluate(0, {"m": 5})] == [("ge", "firing")]
    assert [(c.rule, c.state) for c in engine.evaluate(1, {"m": 4.999})] == [("ge", "cleared"), ("lt", "firing")]
    assert [(c.rule, c.state) for c in engine.evaluate(2, {})] == [("lt", "cleared")]  # no data, no alarm
    assert engine.evaluate(3, {"m": None}) == [] and engine.evaluate(4, {"m": "n/a"}) == []
    assert engine.evaluate(5, {"m": float("nan")}) == []


def test_datetimes_work_as_times_and_disabled_rules_never_fire():
    engine = AlertEngine([AlertRule("mem", "memory_percent", ">", 90, 60), AlertRule("off", "x", ">", 0, 0,
                                                                                     enabled=False)])
    t0 = datetime(2025, 1, 1, 12, 0, 0)  # naive = UTC, like the database
    engine.evaluate(t0, {"memory_percent": 95, "x": 1})
    assert engine.evaluate(t0 + timedelta(seconds=59), {"memory_percent": 95, "x": 1}) == []
    (c,) = engine.evaluate(t0.replace(tzinfo=timezone.utc) + timedelta(seconds=60), {"memory_percent": 95, "x": 1})
    assert c.rule == "mem" and c.as_dict()["time"] == "2025-01-01T12:01:00"


def test_firing_and_clearing_are_written_as_events_and_history_is_bounded(db):
    events = EventLog(db)
    engine = AlertEngine([AlertRule("stall", "stalled_jobs", ">", 0, 0, "critical")], events=events, history=3)
    for t in range(4):
        engine.evaluate(t * 2, {"stalled_jobs": 1})
        engine.evaluate(t * 2 + 1, {"stalled_jobs": 0})
    assert len(engine.history()) == 3
    recorded, _ = events.since(0)
    assert [e.type for e in recorded] == ["alert.firing", "alert.cleared"] * 4
    assert recorded[0].payload["rule"] == "stall" and recorded[0].payload["severity"] == "critical"
    assert recorded[0].source == "alerts"


def test_a_failing_event_log_does_not_break_evaluation():
    class Down:
        def emit(self, *a, **k):
            raise RuntimeError("database down")

    engine = AlertEngine([AlertRule("a", "m", ">", 0, 0)], events=Down())
    assert [c.state for c in engine.evaluate(0, {"m": 1})] == ["firing"]


def test_changing_the_rules_clears_alerts_of_removed_rules():
    engine = AlertEngine([CPU, AlertRule("mem", "memory_percent", ">", 90, 0)])
    engine.evaluate(0, {"memory_percent": 95, "cpu_percent": 95})
    assert [a.rule for a in engine.firing()] == ["mem"]
    (c,) = engine.set_rules([CPU])
    assert c.rule == "mem" and c.state == "cleared" and "removed" in c.message
    assert engine.firing() == [] and engine.pending() == {"cpu_high": 0}  # an unchanged rule keeps its timer


def test_rules_round_trip_through_json_and_bad_rules_are_reported(tmp_path):
    path = tmp_path / "alerts.json"
    save_rules(path, DEFAULT_RULES)
    rules, problems = load_rules(path)
    assert rules == list(DEFAULT_RULES) and problems == []
    assert load_rules(tmp_path / "none.json") == (list(DEFAULT_RULES), [])
    (tmp_path / "bad.json").write_text("{oops")
    rules, problems = load_rules(tmp_path / "bad.json")
    assert rules == list(DEFAULT_RULES) and "cannot be read" in problems[0]
    rules, problems = rules_from_data({"rules": [
        {"name": "ok", "metric": "cpu_percent", "op": ">", "threshold": "80", "for_seconds": 10},
        {"name": "typo", "metric": "cpu_percent", "op": ">", "threshold": 1, "for_secnds": 10},
        {"name": "op", "metric": "m", "op": "=>", "threshold": 1},
        {"name": "num", "metric": "m", "op": ">", "threshold": "high"},
        {"name": "neg", "metric": "m", "op": ">", "threshold": 1, "for_seconds": -1},
        {"name": "sev", "metric": "m", "op": ">", "threshold": 1, "severity": "panic"},
        {"metric": "m", "op": ">", "threshold": 1},
        {"name": "ok", "metric": "m", "op": ">", "threshold": 1},
        "not a rule",
    ]})
    assert [r.name for r in rules] == ["ok"] and rules[0].threshold == 80.0
    assert len(problems) == 8
    assert any("for_secnds" in p for p in problems) and any("twice" in p for p in problems)
    assert rules_from_data("nonsense")[1]
    assert '"cpu_high"' in rules_to_json(DEFAULT_RULES)


def test_metrics_from_the_database_resources_and_telemetry(db):
    now = datetime(2025, 3, 1, 12, 0, 0)
    rows = [{"ts": now - timedelta(seconds=10 + i), "role": "QUERY", "model": "m", "latency_ms": float(i + 1),
             "status": "error" if i < 2 else "ok", "trace_id": ""} for i in range(20)]
    rows.append({"ts": now - timedelta(minutes=30), "role": "QUERY", "model": "m", "latency_ms": 1e6,
                 "status": "error", "trace_id": ""})  # outside the 5-minute window
    with db.session() as s:
        s.execute(insert(LlmCall), rows)
        s.add(Run(id="r1", trace_id="t"))
        s.flush()
        s.add(Job(id="j1", run_id="r1", kind="query", status="running", stalled=True))
        s.add(Job(id="j2", run_id="r1", kind="media", status="running", stalled=False))
    resources = SimpleNamespace(latest=lambda: {"cpu_percent": 91.0, "memory_percent": 42.0})
    telemetry = SimpleNamespace(stats=lambda: SimpleNamespace(dropped=7, buffered=3))
    m = collect_metrics(db, resources=resources, telemetry=telemetry, now=now)
    assert m["llm_calls"] == 20 and m["llm_errors"] == 2 and m["llm_error_rate_pct"] == 10.0
    assert m["llm_p95_latency_ms"] == 19.05  # latencies 1..20
    assert m["stalled_jobs"] == 1 and m["cpu_percent"] == 91.0 and m["telemetry_dropped"] == 7
    assert m["problems"] == []
    few = collect_metrics(db, now=now, min_calls=50)
    assert few["llm_calls"] == 20 and few["llm_error_rate_pct"] is None and few["llm_p95_latency_ms"] is None

    engine = AlertEngine()
    fired = {c.rule for c in engine.tick(db, resources=resources, now=now)}
    assert fired == {"llm_error_rate_high", "job_stalled"}  # CPU needs 5 minutes first
    assert m["runs_degraded"] == 0 and m["runs_failed"] == 0


def test_a_run_that_ended_degraded_or_with_a_failed_report_raises_an_alert(db):
    now = datetime(2025, 3, 1, 12, 0, 0)
    with db.session() as s:
        for run_id, status, ago in (("d1", "completed_degraded", 30), ("d2", "report_failed", 60),
                                    ("f1", "failed", 10), ("old", "completed_degraded", 3600), ("ok", "completed", 5)):
            s.add(Run(id=run_id, trace_id="t", status=status, finished_at=now - timedelta(seconds=ago)))
    m = collect_metrics(db, now=now)
    assert (m["runs_degraded"], m["runs_failed"]) == (2, 1)
    assert {c.rule for c in AlertEngine().tick(db, now=now)} == {"run_degraded"}
    later = now + timedelta(hours=2)
    assert collect_metrics(db, now=later)["runs_degraded"] == 0


def test_metrics_with_nothing_to_read(db):
    m = collect_metrics(db)
    assert m["llm_calls"] == 0 and m["llm_error_rate_pct"] is None and m["stalled_jobs"] == 0
    assert m["runs_degraded"] == 0
    assert collect_metrics() == {"problems": []}
    assert AlertEngine().evaluate(0, collect_metrics(db)) == []
