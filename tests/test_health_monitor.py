"""Periodic health checks: history, status-change events, LLM endpoint reachability."""
from __future__ import annotations

import os

from core.infra.config import load_settings
from core.console.health import OK, WARN, HealthMonitor, check_llm_endpoint
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
