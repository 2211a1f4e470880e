"""Periodic health checks: history, status-change events, LLM endpoint reachability; and the
console's monitor thread: per-task and per-item error capture, and never in the way of a lease."""
from __future__ import annotations

import os
import threading
from datetime import timedelta

import httpx
from sqlalchemy import update

from core.console import health
from core.console.alerts import AlertEngine, AlertRule
from core.console.health import OK, WARN, HealthMonitor, check_llm_endpoint
from core.console.monitoring import Monitor, detect_stalls, each
from core.infra.config import load_settings
from core.infra.models import Job, Run, utcnow
from tests.conftest import wait_for
from tests.fakes.openai_server import FakeOpenAI


def test_history_is_bounded_and_a_status_change_is_an_event(db, events, tmp_path):
    settings = load_settings()
    monitor = HealthMonitor(settings, db, events, history=10, probe_endpoints=False)
    for _ in range(3):
        monitor.run()
    names = {r.name for r in monitor.latest()}
    assert {"database", "logs", "disk", "llm", "search"} <= names
    assert len(monitor.history()) == 10  # 3 runs x 6 checks, bounded to the newest 10
    assert not [e for e in events.since(0)[0] if e.type == "health.changed"]
    # the logs folder becomes unwritable: the next run reports it once, as a change
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a folder should be")
    settings.values["SHOAL_LOG_DIR"] = str(blocker / "logs")
    monitor.run()
    changes = [e for e in events.since(0)[0] if e.type == "health.changed"]
    assert [(c.payload["check"], c.payload["from"], c.payload["to"]) for c in changes] == [("logs", "ok", "fail")]


def test_the_llm_endpoint_check_reaches_a_live_server_and_warns_on_a_dead_one():
    with FakeOpenAI() as fake:
        live = check_llm_endpoint(load_settings(env={**os.environ, **fake.env("QUERY_ENGINE")}))
    assert live.status == OK and fake.url.rstrip("/") in live.detail
    dead = check_llm_endpoint(load_settings(env={**os.environ, "QUERY_ENGINE_BASE_URL": "http://127.0.0.1:1/v1",
                                                 "QUERY_ENGINE_MODEL_NAME": "m", "QUERY_ENGINE_API_KEY": "sk-secret-123456"}),
                              timeout=1)
    assert dead.status == WARN and "127.0.0.1:1" in dead.detail and "sk-secret-123456" not in dead.detail
    assert check_llm_endpoint(load_settings(env={"SHOAL_MODE": "offline"})).status == OK


# ---------------------------------------------------------------------------------------------
# The monitor thread

def test_a_failing_task_does_not_stop_the_other_tasks():
    ran = []

    def boom():
        raise RuntimeError("the task broke")

    monitor = Monitor().add("first", 60, lambda: ran.append("first"), first_after=0)
    monitor.add("boom", 60, boom, first_after=0).add("last", 60, lambda: ran.append("last"), first_after=0)
    monitor.add("later", 60, lambda: ran.append("later"))  # first due after one interval
    assert set(monitor.run_due()) == {"first", "boom", "last"}
    assert ran == ["first", "last"]
    status = monitor.status()
    assert status["boom"].errors == 1 and "the task broke" in status["boom"].last_error
    assert status["last"].errors == 0 and status["last"].last_ok > 0
    assert monitor.run_due() == []  # not due again before its interval


def test_a_failing_item_does_not_stop_the_other_items():
    seen = []

    def visit(n):
        seen.append(n)
        if n == 2:
            raise ValueError("item two is bad")

    failures = each([1, 2, 3], visit, "number")
    assert seen == [1, 2, 3] and [(item, "item two is bad" in err) for item, err in failures] == [(2, True)]


def test_a_failing_endpoint_or_check_does_not_stop_the_others(monkeypatch):
    with FakeOpenAI() as fake:
        env = {**os.environ, **fake.env("QUERY_ENGINE"), "MEDIA_ENGINE_BASE_URL": "http://broken.invalid/v1",
               "MEDIA_ENGINE_MODEL_NAME": "m", "MEDIA_ENGINE_API_KEY": "k"}
        real_get = httpx.get

        def get(url, **kw):
            if "broken.invalid" in url:
                raise RuntimeError("the client itself broke")  # not an httpx.HTTPError
            return real_get(url, **kw)

        monkeypatch.setattr(httpx, "get", get)
        result = check_llm_endpoint(load_settings(env=env))
    assert result.status == WARN and "RuntimeError" in result.detail
    assert f"{fake.url.rstrip('/')}: ok" in result.detail  # the live endpoint was still checked

    def disk_breaks(*_):
        raise OSError("disk check crashed")

    monkeypatch.setattr(health, "check_disk", disk_breaks)
    results = {r.name: r for r in HealthMonitor(load_settings(), _no_db(), probe_endpoints=False).run()}
    assert results["disk"].status == WARN and "disk check crashed" in results["disk"].detail
    assert {"settings", "logs", "llm", "search"} <= set(results)


def _no_db():
    from core.infra.db import open_database

    return open_database("not-a-url://")


def test_a_failing_alert_rule_does_not_stop_the_other_rules():
    class BrokenRule(AlertRule):
        def holds(self, value):
            raise ZeroDivisionError("rule bug")

    engine = AlertEngine([BrokenRule("broken", "cpu_percent", ">", 1), AlertRule("cpu", "cpu_percent", ">", 50)])
    changes = engine.evaluate(0, {"cpu_percent": 90})
    assert [c.rule for c in changes] == ["cpu"] and [a.rule for a in engine.firing()] == ["cpu"]


def test_stall_detection_goes_job_by_job(db, events, monkeypatch):
    old = utcnow() - timedelta(seconds=600)
    with db.session() as s:
        s.add(Run(id="r1", kind="analysis", status="running", trace_id="t"))
        s.flush()
        for job_id in ("r1-a", "r1-b"):
            s.add(Job(id=job_id, run_id="r1", kind="probe", name=job_id, status="running", heartbeat_at=old,
                      checkpoint={}, params={}, depends_on=[]))
    real_emit = events.emit

    def emit(type_, **kw):
        if kw.get("job_id") == "r1-a":
            raise RuntimeError("event log refused this one")
        return real_emit(type_, **kw)

    monkeypatch.setattr(events, "emit", emit)
    failures = detect_stalls(db, events, stall_seconds=60)
    assert [job_id for job_id, _ in failures] == ["r1-a"]
    with db.session() as s:
        assert not s.get(Job, "r1-a").stalled  # its flag rolled back with the failed event
        assert s.get(Job, "r1-b").stalled
    assert [e.job_id for e in events.since(0)[0] if e.type == "job.stalled"] == ["r1-b"]


def test_a_slow_health_check_does_not_delay_lease_renewal(monkeypatch, tmp_path):
    """The runtime's own wiring: the health check hangs (an endpoint that never answers) and the
    supervisor still renews its job's lease, because the check runs on the monitor thread."""
    from core.runtime import build_runtime
    from core.work.probe import probe_jobs

    entered, release = threading.Event(), threading.Event()

    def hung_health_check(self):
        entered.set()
        release.wait()
        return []

    monkeypatch.setattr(HealthMonitor, "run", hung_health_check)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'rt.db'}")
    monkeypatch.setenv("SHOAL_HEARTBEAT_SECONDS", "0.05")
    rt = build_runtime(console_log=False)
    try:
        sup = rt.require_supervisor()
        assert entered.wait(30), "the monitor thread started the health check"
        run_id = sup.submit_run(probe_jobs(1, steps=10_000, step_seconds=0.05), kind="probe")
        job_id = f"{run_id}-probe-1"
        wait_for(lambda: sup.status().active_jobs == 1, what="the probe to be claimed")
        with rt.db.session() as s:  # make the lease look old, so a renewal shows
            s.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow()))
            before = s.get(Job, job_id).lease_expires_at
        beats = sup.heartbeats
        wait_for(lambda: sup.heartbeats >= beats + 3, what="heartbeats while the health check hangs")
        with rt.db.session() as s:
            assert s.get(Job, job_id).lease_expires_at > before  # renewed while the check still hangs
        assert not release.is_set() and rt.monitor.status()["health"].runs == 1
    finally:
        release.set()
        rt.close(timeout=5)
